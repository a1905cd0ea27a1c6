"""The page at ``/``: pick or drop photos, choose the background, see each before and after, and
download the results. Self-contained (no CDN, no external font): it talks to the server's own
remove.bg endpoint with ``fetch`` (our own ``/v1/swap`` for a blurred background)."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>BackgroundSwap</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #222; background: #f6f6f4; }
  body { max-width: 1100px; margin: 0 auto; padding: 24px; }
  h1 { font-size: 22px; margin: 0 0 16px; }
  #drop { border: 2px dashed #999; border-radius: 10px; padding: 28px; text-align: center;
          background: #fff; cursor: pointer; }
  #drop.over { border-color: #2a7; background: #effaf3; }
  fieldset { border: 1px solid #ddd; border-radius: 8px; margin: 16px 0; background: #fff; }
  label { margin-right: 16px; }
  .row { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; margin: 16px 0;
         background: #fff; padding: 12px; border-radius: 8px; }
  .row img { width: 100%; height: auto; display: block; }
  .checks { background-color: #fff;
    background-image: linear-gradient(45deg, #ccc 25%, transparent 25%),
      linear-gradient(-45deg, #ccc 25%, transparent 25%),
      linear-gradient(45deg, transparent 75%, #ccc 75%),
      linear-gradient(-45deg, transparent 75%, #ccc 75%);
    background-size: 16px 16px; background-position: 0 0, 0 8px, 8px -8px, -8px 0; }
  .name { grid-column: 1 / 3; font-weight: 600; }
  .status { grid-column: 1 / 3; color: #666; font-size: 14px; }
  .error { color: #b00; }
  a.download { margin-left: 12px; }
</style>
</head>
<body>
<h1>BackgroundSwap</h1>
<div id="drop">Drop photos here, or click to choose
  <input id="files" type="file" accept="image/*" multiple hidden></div>
<fieldset>
  <legend>Background</legend>
  <label><input type="radio" name="bg" value="transparent" checked> transparent</label>
  <label><input type="radio" name="bg" value="colour"> colour
    <input type="color" id="colour" value="#ffffff"></label>
  <label><input type="radio" name="bg" value="image"> image
    <input type="file" id="bgfile" accept="image/*"></label>
  <label><input type="radio" name="bg" value="blur"> the photo's own, blurred</label>
  <label><input type="checkbox" id="shadow"> shadow</label>
</fieldset>
<div id="results"></div>
<script>
const drop = document.getElementById("drop"), input = document.getElementById("files");
drop.addEventListener("click", () => input.click());
drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => {
  e.preventDefault(); drop.classList.remove("over"); run([...e.dataTransfer.files]);
});
input.addEventListener("change", () => run([...input.files]));

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text) node.textContent = text;
  return node;
}

async function run(files) {
  for (const file of files) await swap(file);
}

async function swap(file) {
  const row = el("div", "row");
  row.append(el("div", "name", file.name));
  const before = el("img"); before.alt = "before"; before.src = URL.createObjectURL(file);
  const after = el("img", "checks"); after.alt = "after";
  const status = el("div", "status", "working…");
  row.append(before, after, status);
  document.getElementById("results").prepend(row);
  const form = new FormData();
  form.append("image_file", file);
  const kind = document.querySelector("input[name=bg]:checked").value;
  // remove.bg's endpoint, but for a blur (our own /v1/swap: remove.bg has no such choice).
  const endpoint = kind === "blur" ? "v1/swap" : "v1.0/removebg";
  if (kind === "blur") form.append("bg", "blur"); else form.append("size", "full");
  if (kind === "colour") form.append("bg_color", document.getElementById("colour").value);
  if (kind === "image") {
    const bg = document.getElementById("bgfile").files[0];
    if (!bg) {
      status.textContent = "choose a background image"; status.classList.add("error"); return;
    }
    form.append("bg_image_file", bg);
  }
  if (document.getElementById("shadow").checked && kind !== "blur") {
    form.append("add_shadow", "true");
  }
  form.append("format", kind === "transparent" ? "png" : "jpg");
  const started = performance.now();
  try {
    const response = await fetch(endpoint, { method: "POST", body: form });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      const error = (body.errors || [{ title: response.statusText }])[0];
      throw new Error(error.title + (error.detail ? ": " + error.detail : ""));
    }
    const blob = await response.blob();
    after.src = URL.createObjectURL(blob);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    status.textContent = `${response.headers.get("X-Width")}×${response.headers.get("X-Height")}`
      + ` in ${seconds} s`;
    const link = el("a", "download", "download");
    link.href = after.src;
    link.download = file.name.replace(/\\.[^.]+$/, "") + (kind === "transparent" ? ".png" : ".jpg");
    status.append(link);
    row.dataset.done = "1";
  } catch (error) {
    status.textContent = error.message; status.classList.add("error");
    row.dataset.done = "error";
  }
}
</script>
</body>
</html>
"""
