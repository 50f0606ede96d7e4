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

// The overview's charts, drawn by Chart.js (the setup's copy, /console/chart.js) from the data
// the page carries in attributes; the tables beside them hold the same numbers.
window.addEventListener("load", () => {
  if (typeof Chart === "undefined") return;
  const css = getComputedStyle(document.documentElement);
  const colour = (name) => css.getPropertyValue(name).trim();
  const days = document.getElementById("chart-days");
  if (days) {
    const data = JSON.parse(days.dataset.days);
    new Chart(days, {
      type: "bar",
      data: {
        labels: data.map((d) => d.day),
        datasets: [
          { label: "Block", data: data.map((d) => d.block), backgroundColor: colour("--block") },
          { label: "Review", data: data.map((d) => d.review), backgroundColor: colour("--review") },
          { label: "Pass", data: data.map((d) => d.pass), backgroundColor: colour("--pass") },
        ],
      },
      options: { animation: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });
  }
  const labels = document.getElementById("chart-labels");
  if (labels) {
    const data = JSON.parse(labels.dataset.labels);
    new Chart(labels, {
      type: "bar",
      data: { labels: data.map((d) => d.label), datasets: [{ label: "", data: data.map((d) => d.count), backgroundColor: colour("--review") }] },
      options: { animation: false, indexAxis: "y", plugins: { legend: { display: false } } },
    });
  }
  const usage = document.getElementById("chart-usage");
  if (usage) {
    const data = JSON.parse(usage.dataset.usage);
    new Chart(usage, {
      type: "bar",
      data: {
        labels: data.map((d) => d.day),
        datasets: [
          { label: "Trial", data: data.map((d) => d.trial), backgroundColor: colour("--pass") },
          { label: "Package", data: data.map((d) => d.package), backgroundColor: colour("--brand") },
          { label: "Pay as you go", data: data.map((d) => d.payg), backgroundColor: colour("--review") },
        ],
      },
      options: { animation: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });
  }
  document.body.dataset.charts = "drawn";
});
