// Report pages: the dashboard's charts, drawn from each canvas's data-chart attribute (the CSP forbids inline
// script), and the quarterly summary's print button. Without JavaScript the tables beside the charts remain.
(function () {
  "use strict";

  var COLORS = ["#1d4ed8", "#c2410c", "#15803d"];

  if (window.Chart) {
    Array.prototype.forEach.call(document.querySelectorAll("canvas[data-chart]"), function (canvas) {
      var spec = JSON.parse(canvas.getAttribute("data-chart"));
      var many = spec.datasets.length > 1;
      new window.Chart(canvas, {
        type: spec.type,
        data: {
          labels: spec.labels,
          datasets: spec.datasets.map(function (set, i) {
            return {
              label: set.label,
              data: set.data,
              backgroundColor: COLORS[i % COLORS.length],
              borderColor: COLORS[i % COLORS.length],
              tension: 0.2
            };
          })
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          // The figures are counts: no 0.5 of a volunteer on the axis.
          scales: { y: { beginAtZero: true, ticks: { precision: spec.id === "hours" ? undefined : 0 } } },
          plugins: { legend: { display: many } }
        }
      });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
