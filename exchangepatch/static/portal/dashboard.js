// Dashboard charts, drawn by the vendored Chart.js from the JSON the page embeds; a click on a bar opens the
// servers behind it (the same links as the tables beside the charts).
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.animation = false;

  const levels = document.getElementById("chart-levels");
  if (levels && data.levels.labels.length) {
    window.levelsChart = new Chart(levels, {
      type: "bar",
      data: {
        labels: data.levels.labels,
        datasets: [{ label: "Servers", data: data.levels.counts, backgroundColor: "#0d6efd" }],
      },
      options: {
        indexAxis: "y",
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
        onClick: (event, elements) => {
          if (elements.length) window.location.href = data.levels.urls[elements[0].index];
        },
      },
    });
  }

  const trend = document.getElementById("chart-trend");
  if (trend && data.trend.labels.length) {
    window.trendChart = new Chart(trend, {
      type: "bar",
      data: {
        labels: data.trend.labels,
        datasets: data.trend.states.map((state) => ({
          label: state.label, data: state.counts, backgroundColor: state.colour, state: state.state,
        })),
      },
      options: {
        maintainAspectRatio: false,
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }
})();
