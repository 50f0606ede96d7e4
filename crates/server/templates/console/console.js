// Keyboard shortcuts: an element with data-key="x" is clicked when x is pressed, unless the
// focus is in a field (typing a note must not decide anything).
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
  const element = document.querySelector(`[data-key="${CSS.escape(event.key.toLowerCase())}"]`);
  if (element) {
    event.preventDefault();
    element.click();
  }
});

// The image library's drop zone: files dropped on it are the form's files, then it is sent.
const drop = document.getElementById("drop");
if (drop) {
  const input = document.getElementById("images");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    input.files = event.dataTransfer.files;
    input.form.requestSubmit();
  });
}

// The charts, drawn by Chart.js (the setup's copy, /console/chart.js) from the data the page
// carries in attributes; the tables beside them hold the same numbers.
window.addEventListener("load", () => {
  if (typeof Chart === "undefined") return;
  const css = getComputedStyle(document.documentElement);
  const colour = (name) => css.getPropertyValue(name).trim();
  // Per day, one stacked bar of `series`: [field, legend, colour variable].
  const perDay = (id, attribute, series) => {
    const canvas = document.getElementById(id);
    if (!canvas) return;
    const data = JSON.parse(canvas.getAttribute(attribute));
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.map((d) => d.day),
        datasets: series.map(([field, legend, variable]) => ({
          label: legend, data: data.map((d) => d[field]), backgroundColor: colour(variable),
        })),
      },
      options: { animation: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });
  };
  perDay("chart-days", "data-days", [["block", "Block", "--block"], ["review", "Review", "--review"], ["pass", "Pass", "--pass"]]);
  perDay("chart-usage", "data-usage", [["trial", "Trial", "--pass"], ["package", "Package", "--brand"], ["payg", "Pay as you go", "--review"]]);
  const labels = document.getElementById("chart-labels");
  if (labels) {
    const data = JSON.parse(labels.dataset.labels);
    new Chart(labels, {
      type: "bar",
      data: { labels: data.map((d) => d.label), datasets: [{ label: "", data: data.map((d) => d.count), backgroundColor: colour("--review") }] },
      options: { animation: false, indexAxis: "y", plugins: { legend: { display: false } } },
    });
  }
});
