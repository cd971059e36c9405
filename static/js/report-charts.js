// The weekly report's two charts (/staff/reports/<week>), drawn with the vendored ECharts.
// The figures come from <script type="application/json" id="report-chart-data">: the CSP allows no
// inline script. Tooltips render inside the canvas (renderMode "richText"): ECharts' HTML tooltips
// carry style attributes, which the CSP (style-src 'self') refuses. The tables show every figure,
// so the page reads the same without this script.
(function () {
  "use strict";
  var source = document.getElementById("report-chart-data");
  if (!source || typeof window.echarts === "undefined") return;
  var data = JSON.parse(source.textContent);
  var labels = data.labels;
  var RED = "#b3120f";
  var GREEN = "#3a8f3a";
  var BLUE = "#0a58ca";
  var charts = [];

  function percent(value) {
    return value === null || value === undefined ? null : Math.round(value * 1000) / 10;
  }

  function draw(element, option) {
    if (!element) return;
    var chart = window.echarts.init(element, null, { renderer: "canvas" });
    chart.on("finished", function () {
      element.setAttribute("data-rendered", "true");
    });
    chart.setOption(option);
    charts.push(chart);
  }

  var common = {
    animation: false,
    aria: { enabled: true },
    textStyle: { fontFamily: "sans-serif" },
    tooltip: { trigger: "axis", renderMode: "richText", axisPointer: { type: "shadow" } },
    legend: { top: 0 },
    grid: { left: 8, right: 8, top: 48, bottom: 8, containLabel: true },
  };

  function extend(base, extra) {
    var out = {};
    Object.keys(base).forEach(function (key) {
      out[key] = base[key];
    });
    Object.keys(extra).forEach(function (key) {
      out[key] = extra[key];
    });
    return out;
  }

  // 1. The last 8 weeks: open overdue at each week's end (bars), the on-time rate (line, %).
  draw(
    document.getElementById("chart-trend"),
    extend(common, {
      xAxis: { type: "category", data: data.trend.map(function (p) { return p.week; }) },
      yAxis: [
        { type: "value", name: "件", minInterval: 1 },
        { type: "value", name: "%", min: 0, max: 100, splitLine: { show: false } },
      ],
      series: [
        {
          name: labels.open_overdue,
          type: "bar",
          itemStyle: { color: RED },
          data: data.trend.map(function (p) { return p.open_overdue; }),
        },
        {
          name: labels.on_time_rate,
          type: "line",
          yAxisIndex: 1,
          itemStyle: { color: BLUE },
          connectNulls: false,
          tooltip: { valueFormatter: function (v) { return v === null || v === undefined ? "—" : v + "%"; } },
          data: data.trend.map(function (p) { return percent(p.on_time_rate); }),
          markLine: {
            silent: true,
            symbol: "none",
            lineStyle: { color: "#999", type: "dashed" },
            label: { formatter: "通报线 {c}%", position: "insideEndTop" },
            data: [{ yAxis: percent(data.target) }],
          },
        },
      ],
    })
  );

  // 2. This week's answers of each org directly below: on time vs late, stacked.
  draw(
    document.getElementById("chart-orgs"),
    extend(common, {
      xAxis: {
        type: "category",
        data: data.children.map(function (c) { return c.name; }),
        axisLabel: { interval: 0, rotate: data.children.length > 6 ? 30 : 0 },
      },
      yAxis: { type: "value", name: "件", minInterval: 1 },
      series: [
        {
          name: labels.responded_on_time,
          type: "bar",
          stack: "answered",
          itemStyle: { color: GREEN },
          data: data.children.map(function (c) { return c.on_time; }),
        },
        {
          name: labels.responded_late,
          type: "bar",
          stack: "answered",
          itemStyle: { color: RED },
          data: data.children.map(function (c) { return c.late; }),
        },
      ],
    })
  );

  window.addEventListener("resize", function () {
    charts.forEach(function (chart) {
      chart.resize();
    });
  });
})();
