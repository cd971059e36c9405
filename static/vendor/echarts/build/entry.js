// Only what static/js/report-charts.js draws: bar and line series, a category x-axis and value
// y-axes (grid), the legend, the axis tooltip (it installs the axis pointer), the dashed target
// line (markLine) and the generated aria description, on the canvas renderer. A chart type or
// option outside this list is silently ignored by ECharts, so add it here when the script uses it.
import * as echarts from "echarts/core";
import { BarChart, LineChart } from "echarts/charts";
import {
  AriaComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  TooltipComponent,
} from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([
  BarChart,
  LineChart,
  GridComponent,
  LegendComponent,
  TooltipComponent,
  MarkLineComponent,
  AriaComponent,
  CanvasRenderer,
]);

// report-charts.js reads window.echarts, as it did with the full dist build.
window.echarts = echarts;
