"""The page at ``/``: drop a photo (or choose one), and see every face's box and label drawn
on it, with the probabilities. Plain HTML and a little JavaScript, no external resources
(the service may run where nothing outside is reachable)."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fer serve</title>
<style>
 body { font-family: sans-serif; margin: 2em; color: #222; }
 #drop { border: 3px dashed #888; border-radius: 8px; padding: 2em; text-align: center;
         max-width: 720px; }
 #drop.over { border-color: #0a7; background: #efe; }
 canvas { margin-top: 1em; max-width: 100%; }
 table { border-collapse: collapse; margin-top: 1em; }
 td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
 #status { margin-top: 1em; font-weight: bold; }
</style></head>
<body>
<h1>Facial expressions</h1>
<p id="model">loading the model's description...</p>
<div id="drop">Drop a photo here, or <input type="file" id="file" accept="image/*"></div>
<div id="status"></div>
<canvas id="view" width="0" height="0"></canvas>
<table id="faces"></table>
<script>
const COLOURS = ["#e6194b", "#3cb44b", "#ffe119", "#0082c8", "#f58231", "#911eb4", "#46f0f0"];
fetch("/model").then(r => r.json()).then(m => {
  document.getElementById("model").textContent =
    m.model + ": " + m.classes.join(", ") + " (TTA: " + m.face_spec.tta + ")";
});
const drop = document.getElementById("drop");
drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => {
  e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files.length) classify(e.dataTransfer.files[0]);
});
document.getElementById("file").addEventListener("change", e => {
  if (e.target.files.length) classify(e.target.files[0]);
});
async function classify(file) {
  const status = document.getElementById("status");
  status.textContent = "classifying " + file.name + "...";
  const form = new FormData(); form.append("file", file, file.name);
  const reply = await fetch("/predict", { method: "POST", body: form });
  const result = await reply.json();
  if (!reply.ok) { status.textContent = "refused: " + result.detail; return; }
  status.textContent = result.faces.length + " face(s) in " + file.name;
  draw(file, result);
}
function draw(file, result) {
  const img = new Image();
  img.onload = () => {
    // The service reads EXIF orientation; the browser shows the photo upright too.
    const canvas = document.getElementById("view");
    canvas.width = result.width; canvas.height = result.height;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0, result.width, result.height);
    const rows = ["<tr><th>face</th><th>class</th><th>probability</th></tr>"];
    result.faces.forEach((f, i) => {
      const colour = COLOURS[i % COLOURS.length];
      ctx.strokeStyle = colour; ctx.lineWidth = Math.max(2, result.width / 300);
      ctx.strokeRect(f.x1, f.y1, f.x2 - f.x1, f.y2 - f.y1);
      const p = f["p_" + f["class"]];
      const label = f["class"] + " " + (100 * p).toFixed(0) + "%";
      const px = Math.max(14, Math.round(result.width / 40));
      ctx.font = px + "px sans-serif";
      const w = ctx.measureText(label).width, top = Math.max(0, f.y1 - px - 6);
      ctx.fillStyle = colour; ctx.fillRect(f.x1, top, w + 8, px + 6);  // a tag over the box
      ctx.fillStyle = "#fff"; ctx.fillText(label, f.x1 + 4, top + px);
      rows.push("<tr><td>" + i + "</td><td>" + f["class"] + "</td><td>" + p.toFixed(3) +
                "</td></tr>");
    });
    document.getElementById("faces").innerHTML = rows.join("");
  };
  img.src = URL.createObjectURL(file);
}
</script>
</body></html>
"""
