// 统计分析's two charts (/staff/stats), drawn with the vendored ECharts (bar and line only).
// The figures come from <script type="application/json" id="stats-chart-data">: the CSP allows no
// inline script, and tooltips render in the canvas (richText) because HTML tooltips carry style
// attributes. The tables show every figure, so the page reads the same without this script.
(function () {
  "use strict";
  var source = document.getElementById("stats-chart-data");
  if (!source || typeof window.echarts === "undefined") return;
  var data = JSON.parse(source.textContent);
  var labels = data.labels;
  var BLUE = "#0a58ca";
  var GREEN = "#3a8f3a";
  var GREY = "#6c757d";
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

  function option(categories, series) {
    return {
      animation: false,
      aria: { enabled: true },
      textStyle: { fontFamily: "sans-serif" },
      tooltip: { trigger: "axis", renderMode: "richText", axisPointer: { type: "shadow" } },
      legend: { top: 0 },
      grid: { left: 8, right: 8, top: 48, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: categories, axisLabel: { interval: 0, hideOverlap: true } },
      yAxis: [
        { type: "value", name: "件", minInterval: 1 },
        { type: "value", name: "%", min: 0, max: 100, splitLine: { show: false } },
      ],
      series: series,
    };
  }

  function rateLine(name, color, points, key) {
    return {
      name: name,
      type: "line",
      yAxisIndex: 1,
      itemStyle: { color: color },
      connectNulls: false,
      data: points.map(function (p) { return percent(p[key]); }),
    };
  }

  function bars(points) {
    return {
      name: labels.received,
      type: "bar",
      itemStyle: { color: GREY },
      data: points.map(function (p) { return p.received; }),
    };
  }

  draw(
    document.getElementById("chart-stats-trend"),
    option(
      data.trend.map(function (p) { return p.key; }),
      [
        bars(data.trend),
        rateLine(labels.on_time_rate, BLUE, data.trend, "on_time_rate"),
        rateLine(labels.satisfaction_rate, GREEN, data.trend, "satisfaction_rate"),
      ]
    )
  );
  draw(
    document.getElementById("chart-stats-rows"),
    option(
      data.rows.map(function (p) { return p.label; }),
      [bars(data.rows), rateLine(labels.on_time_rate, BLUE, data.rows, "on_time_rate")]
    )
  );

  window.addEventListener("resize", function () {
    charts.forEach(function (chart) { chart.resize(); });
  });
})();
