/* The data browser: reads a page of items through the API with the page's filters (its query
   string), shows them as a grid of thumbnails, opens one large (in viewer.js's ImageViewer) with its
   history and each model version's guess to change its label, and lets managers relabel, send to
   review or mark ambiguous several selected items at once. */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("browse-config").textContent);
  const grid = document.getElementById("browse-grid");
  const detail = document.getElementById("browse-detail");
  const statusBox = document.getElementById("browse-status");
  const selected = new Set();
  let page = 1;
  let next = null;
  let current = null; // the item open large
  let shown = []; // the items of the page on screen
  const viewer = new ImageViewer(document.getElementById("detail-frame"), document.getElementById("detail-image"), {
    controls: detail.querySelector("[data-viewer-controls]"),
  }).bindControls(detail);

  function countSelected() {
    const count = document.getElementById("selected-count");
    if (count) count.textContent = `${selected.size} selected`;
  }

  function say(message) {
    statusBox.textContent = message;
  }

  const PAGE_SIZE = 60;

  /* An item's answer as class names (the list carries ``label`` or, multi-label, ``labels``); null while unlabeled. */
  function names(item) {
    if (item.status !== "labeled") return null;
    if (Array.isArray(item.labels)) return item.labels;
    return item.label ? [item.label] : [];
  }

  // Box projects: a colour per class, in class order (the same on every tile and the large view)
  const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#469990", "#808000"];
  const colourOf = (name) => PALETTE[Math.max(0, config.classes.indexOf(name)) % PALETTE.length];

  /* An SVG of an item's boxes in its image pixels (viewBox W x H), to lay over the image; dashed with
     their confidence for the model's pre-boxes. */
  function boxesSvg(item, boxes, dashed) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${item.width} ${item.height}`);
    svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    svg.setAttribute("class", "browse-boxes");
    svg.setAttribute("aria-hidden", "true");
    for (const b of boxes) {
      const rect = document.createElementNS(ns, "rect");
      const attributes = { x: b.x, y: b.y, width: b.w, height: b.h, stroke: colourOf(b.label), "data-label": b.label };
      for (const [key, value] of Object.entries(attributes)) rect.setAttribute(key, String(value));
      if (dashed) rect.setAttribute("stroke-dasharray", "6 4");
      const title = document.createElementNS(ns, "title");
      title.textContent = dashed ? `${b.label} ${b.confidence.toFixed(2)}` : b.label;
      rect.append(title);
      svg.append(rect);
    }
    return svg;
  }

  function labelText(item) {
    const given = names(item);
    if (given === null) return item.status;
    if (Array.isArray(item.boxes)) return item.boxes.length ? `${item.boxes.length} boxes: ${given.join(", ")}` : "nothing here";
    return given.length ? given.join(", ") : "(none)";
  }

  function tile(item) {
    const li = document.createElement("li");
    li.className = "browse-tile";
    li.dataset.id = String(item.id);
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = selected.has(item.id);
    box.setAttribute("aria-label", `Select ${item.filename}`);
    box.hidden = !config.manager;
    box.addEventListener("change", () => {
      if (box.checked) selected.add(item.id);
      else selected.delete(item.id);
      countSelected();
    });
    const open = document.createElement("button");
    open.type = "button";
    open.className = "browse-open";
    const img = document.createElement("img");
    img.src = item.thumbnail_url;
    img.loading = "lazy";
    img.alt = item.filename;
    const caption = document.createElement("span");
    caption.className = "browse-caption";
    let text = labelText(item);
    if (item.prelabel) text += ` · model: ${item.prelabel.label} ${item.prelabel.confidence.toFixed(2)}`;
    if (item.review_status === "flagged") text += " · flagged";
    if (item.review_status === "ambiguous") text += " · ambiguous";
    caption.textContent = text;
    const frame = document.createElement("span");
    frame.className = "browse-thumb";
    frame.append(img);
    if (item.boxes && item.boxes.length) frame.append(boxesSvg(item, item.boxes, false));
    open.append(frame, caption);
    open.addEventListener("click", () => show(item.id));
    li.append(box, open);
    return li;
  }

  async function load() {
    const params = new URLSearchParams(window.location.search);
    [...params.keys()].forEach((key) => {
      if (!params.get(key)) params.delete(key);
    });
    if (!params.has("order")) params.set("order", "-id");
    params.set("page", String(page));
    params.set("page_size", String(PAGE_SIZE));
    try {
      const data = await Api.request("GET", `/projects/${config.project}/items/?${params}`);
      shown = data.results;
      grid.replaceChildren(...shown.map(tile));
      next = data.next ? page + 1 : null;
      document.getElementById("browse-count").textContent = `${data.count} item${data.count === 1 ? "" : "s"}`;
      const pages = Math.max(1, Math.ceil(data.count / PAGE_SIZE));
      document.getElementById("browse-page").textContent = `page ${page} of ${pages}`;
      say(data.count ? "" : "No items pass these filters.");
    } catch (error) {
      say(error.message);
    }
  }

  function historyLine(entry) {
    const li = document.createElement("li");
    const when = new Date(entry.created).toLocaleString();
    li.textContent = `${entry.user || "import"} (${entry.source}) → ${entry.labels.join(", ") || "(none)"} · ${when}`;
    if (!entry.active) li.className = "muted";
    return li;
  }

  async function show(itemId) {
    try {
      const data = await Api.request("GET", `/items/${itemId}/history/`);
      current = data.item;
      detail.hidden = false;
      viewer.show(current.image_url);
      viewer.layer.querySelectorAll(".browse-boxes").forEach((old) => old.remove());
      if (current.boxes && current.boxes.length) viewer.layer.append(boxesSvg(current, current.boxes, false));
      if (current.preboxes && current.preboxes.length) viewer.layer.append(boxesSvg(current, current.preboxes, true));
      const info = [`${current.filename}`, `Label: ${labelText(current)}`];
      if (current.prelabel) {
        const p = current.prelabel;
        info.push(`Model v${p.model_version}: ${p.label} (${p.confidence.toFixed(2)})`);
      }
      if (data.review_action) info.push(`Review: ${data.review_action} by ${data.reviewed_by}`);
      const box = document.getElementById("detail-info");
      box.replaceChildren(...info.map((line) => Object.assign(document.createElement("div"), { textContent: line })));
      document.getElementById("detail-history").replaceChildren(...data.annotations.map(historyLine));
      const guesses = document.getElementById("detail-predictions");
      if (guesses) {
        const lines = data.predictions.map((g) => `v${g.version}: ${g.label} (${g.confidence.toFixed(2)})`);
        guesses.replaceChildren(...lines.map((line) => Object.assign(document.createElement("li"), { textContent: line })));
      }
      detail.querySelectorAll("[data-class]").forEach((button) => {
        button.setAttribute("aria-pressed", String((names(current) || []).includes(button.dataset.class)));
      });
    } catch (error) {
      say(error.message);
    }
  }

  async function relabel(body) {
    try {
      await Api.request("POST", `/items/${current.id}/annotations/`, body);
      say("Label saved.");
      await show(current.id);
      await load();
    } catch (error) {
      say(error.message);
    }
  }

  detail.querySelectorAll("[data-class]").forEach((button) =>
    button.addEventListener("click", () => {
      if (!current) return;
      if (!config.multi_label) return relabel({ label: button.dataset.class });
      button.setAttribute("aria-pressed", String(button.getAttribute("aria-pressed") !== "true"));
      return undefined;
    })
  );

  function on(action, handler) {
    const button = document.querySelector(`[data-action="${action}"]`);
    if (button) button.addEventListener("click", handler);
  }

  on("save-labels", () => {
    const chosen = [...detail.querySelectorAll('[data-class][aria-pressed="true"]')].map((b) => b.dataset.class);
    relabel({ labels: chosen });
  });
  function close() {
    const was = current && grid.querySelector(`[data-id="${current.id}"] .browse-open`);
    detail.hidden = true;
    current = null;
    if (was) was.focus();
  }
  on("close", close);
  on("prev", () => {
    if (page > 1) {
      page -= 1;
      load();
    }
  });
  on("next", () => {
    if (next) {
      page = next;
      load();
    }
  });

  async function bulk(action) {
    if (!selected.size) return say("Select some items first.");
    const body = { items: [...selected], action };
    if (action === "relabel") {
      const name = document.getElementById("bulk-label").value;
      if (config.multi_label) body.labels = [name];
      else body.label = name;
    }
    try {
      const data = await Api.request("POST", `/projects/${config.project}/items/bulk/`, body);
      selected.clear();
      countSelected();
      await load();
      const done = { relabel: "Relabeled", review: "Sent to review", ambiguous: "Marked ambiguous" }[data.action];
      return say(`${done}: ${data.changed} items.`);
    } catch (error) {
      return say(error.message);
    }
  }

  /* Keys while an item is open: ← and → open the page's previous and next item, Escape closes it. */
  function neighbour(step) {
    const at = shown.findIndex((item) => item.id === current.id);
    const next = shown[at + step];
    if (at >= 0 && next) show(next.id);
  }
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const box = target && target.tagName === "INPUT" && /^(checkbox|radio|range)$/.test(target.type);
    const typing = target && !box && (/^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) || target.isContentEditable);
    if (!current || typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const keys = { ArrowLeft: () => neighbour(-1), ArrowRight: () => neighbour(1), Escape: () => close() };
    if (!keys[event.key]) return;
    event.preventDefault();
    keys[event.key]();
  });

  on("select-page", () => {
    shown.forEach((item) => selected.add(item.id));
    grid.querySelectorAll("input[type=checkbox]").forEach((box) => (box.checked = true));
    countSelected();
  });
  on("bulk-relabel", () => bulk("relabel"));
  on("bulk-review", () => bulk("review"));
  on("bulk-ambiguous", () => bulk("ambiguous"));
  load();
})();
