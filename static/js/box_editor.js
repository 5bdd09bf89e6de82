/* BoxEditor: one image's object boxes drawn over viewer.js's ImageViewer and edited there, with the
   mouse and the keyboard; shared by the box labeling page (boxes.js) and the box review page
   (review_boxes.js). A drag on the image draws a box of the current class; a click or Tab selects a
   box, a drag moves it, the selected box's corners resize it, the arrow keys nudge it (Alt: resize);
   Space + drag or the middle button pans, the wheel zooms (the viewer's), a crosshair follows the
   pointer. Suggested boxes (pre-boxes) show dashed until accepted, rejected or edited. Other sets of
   boxes (each person's, on the review page) can be shown beside them, read-only, each in a style of
   its own. The boxes are in the image's own pixels (the API's width and height), drawn in an SVG in
   the viewer's layer so that they follow the zoom and the pan; strokes and dashes are sized with the
   CSS variable --u (image pixels per screen pixel), as vector-effect does not undo the layer's CSS
   transform. Needs viewer.js; app.css's box labeling section draws it.

   Markup: the viewer's frame (the editor adds <svg class="box-layer"> to viewer.layer) and, if the
   page wants them, class buttons (elements with data-label and a .conf child: the current class, or
   the selected box's, is chosen, and each shows the number of its boxes) and a list (<ol>: one <li>
   per box with data-index, data-label and data-state; a click selects the box).

   Script (after viewer.js, before the page's module):

     const editor = new BoxEditor(viewer, {
       classes: [{name, color}],      // the project's classes in order; the first is the current class
       buttons: [...buttons],         // optional: the class buttons
       list: document.getElementById("box-list"),   // optional: the list of the boxes
       words: { drawn: "new" },       // optional: the list's words for a box's state (drawn, accepted,
                                      // moved, relabeled, suggested), where the page says it otherwise
       onChange: (editor) => {},      // after every redraw: boxes, selection, class or view changed
     });
     const state = editor.load(item.boxes, { preboxes, width, height });   // a new image's boxes
     editor.resume(state);            // back to an image edited before (its state as load gave it)
     editor.clear();                  // no image: nothing drawn

   Methods:
   - load(boxes, {preboxes, width, height, origin}): start editing an image (width and height: its
     size in box pixels, else the image element's). ``boxes`` (a list of {label, x, y, w, h}) are its
     boxes, outcome "drawn"; with origin: true they are the boxes given (outcome "accepted" until
     moved or relabeled, then "moved" or "relabeled"; deleted, they are simply gone). Without
     ``boxes`` (null), the ``preboxes`` ({label, x, y, w, h, confidence}) are its suggestions.
     Returns the editing state ({boxes, rejected, selected, width, height}), for resume(state).
   - resume(state), clear(); state (the state on screen, or null); busy (a drag is in progress: do
     not save now).
   - boxes(): the boxes as they are now, [{label, x, y, w, h}] to 0.01 px. answer(): the labeling
     API's list: each box with its outcome (drawn, accepted, moved, relabeled) and a suggestion's
     confidence, then the rejected suggestions (outcome "rejected"). acceptAll(): the suggestions
     left as they are count as accepted. rejectAll(): no boxes, every suggestion rejected.
   - selected (the selected box's index, -1: none), select(index), selectedBox(); currentClass,
     setClass(name) (the class of the next box, and of the selected one); acceptSelected() and
     deleteSelected() (a suggestion deleted is rejected; both false when there is no suggested box,
     or no box, selected: the page says what to do); nudge(arrowKey, step, resize).
   - setLayers([{name, boxes, color, dash, shown}]): read-only sets of boxes drawn under the editable
     ones, each box in the layer's colour with the dash pattern ``dash`` (screen pixels, "6 3"; ""
     solid) and a tag "name: class" at its bottom edge; shown: false leaves a layer out.
   - render(); helpRows(extra): the help's rows for the editor's gestures and keys, ``extra`` after
     the box keys, then panning and the viewer's own.
   - BoxEditor.same(a, b): whether two lists hold the same boxes (class and rectangle to 0.01 px),
     in any order.

   Keys it binds itself (not while typing in a field or while a dialog is open): Space held (a drag
   pans), Tab and Shift+Tab (select the next or previous box, while the focus is on no control), the
   arrows (move the selected box 1 px, Shift: 10; Alt: move its right or bottom edge; with no box
   selected, pan). The rest (class keys, delete, accept, Escape to unselect) are the page's keymap's,
   calling the methods above. */
(function (global) {
  "use strict";

  const SVG = "http://www.w3.org/2000/svg";
  const MIN_SIDE = 2; // image pixels: a drawn box smaller than this either way is a mis-click
  const HANDLE_PX = 10; // the corner handles' side, in screen pixels
  const TAG_PX = 12; // the class tags' font size, in screen pixels
  const LAYER_TAG_PX = 11; // the layers' tags' font size, in screen pixels
  const PAN_PX = 60; // an arrow key pans this far when no box is selected

  function setAttrs(el, attrs) {
    Object.entries(attrs || {}).forEach(([key, value]) => el.setAttribute(key, value));
    return el;
  }

  const svgEl = (name, attrs) => setAttrs(document.createElementNS(SVG, name), attrs);

  /* SVG elements have no hidden property: shown or not by their display. */
  const display = (el, shown) => (el.style.display = shown ? "" : "none");
  const round2 = (v) => Math.round(v * 100) / 100;
  const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

  function box(b) {
    return { label: b.label, x: Number(b.x), y: Number(b.y), w: Number(b.w), h: Number(b.h) };
  }

  /* A box as the API takes it, to 0.01 px. */
  function rounded(b) {
    return { label: b.label, x: round2(b.x), y: round2(b.y), w: round2(b.w), h: round2(b.h) };
  }

  function rectBetween(a, b) {
    return { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(a.x - b.x), h: Math.abs(a.y - b.y) };
  }

  /* A suggested box nobody accepted, rejected or edited yet: dashed. */
  const isSuggested = (b) => Boolean(b.pre) && !b.accepted && !b.touched;

  /* How a box came to be, as the API names it (a suggestion left as it is counts as accepted). */
  function outcome(b) {
    if (!b.pre) return "drawn";
    if (b.label !== b.pre.label) return "relabeled";
    const same = ["x", "y", "w", "h"].every((k) => Math.abs(round2(b[k]) - round2(b.pre[k])) < 0.005);
    return same ? "accepted" : "moved";
  }

  /* Dark text on light colours, white on dark ones. */
  function textColor(hex) {
    const n = parseInt(hex.slice(1), 16);
    const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
    return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#1d2330" : "#fff";
  }

  function isTyping(target) {
    const tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || Boolean(target && target.isContentEditable);
  }

  function dialogOpen() {
    return Array.from(document.querySelectorAll("[role=dialog]")).some((el) => !el.hidden);
  }

  class BoxEditor {
    constructor(viewer, options = {}) {
      this.viewer = viewer;
      this.frame = viewer.container;
      this.colors = Object.fromEntries((options.classes || []).map((c) => [c.name, c.color]));
      this.currentClass = options.classes && options.classes.length ? options.classes[0].name : null;
      this.buttons = options.buttons || [];
      this.list = options.list || null;
      this.words = options.words || {};
      this.onChange = options.onChange || (() => {});
      this.state = null; // the image being edited: {boxes, rejected, selected, width, height}
      this.layers = [];
      this.spaceHeld = false; // Space + drag pans
      this.gesture = null; // the drag in progress: {kind: draw | move | resize | pan, ...}
      this.pointer = null; // the last pointer position over the frame, client pixels

      // The viewer pans with Space + the left button only: a plain drag draws, moves or resizes a box.
      viewer.canPan = (event) => this.spaceHeld && event.button === 0;

      /* The overlay: the read-only layers, the boxes (redrawn on each change), the box being drawn
         and the crosshair. */
      this.svg = svgEl("svg", { class: "box-layer", preserveAspectRatio: "none", "aria-hidden": "true" });
      this.layerGroup = svgEl("g", { class: "box-layers" });
      this.boxGroup = svgEl("g", { class: "boxes" });
      this.draft = svgEl("rect", { class: "box-draft" });
      this.crossX = svgEl("line", { class: "crosshair" });
      this.crossY = svgEl("line", { class: "crosshair" });
      this.svg.append(this.layerGroup, this.boxGroup, this.draft, this.crossX, this.crossY);
      viewer.layer.append(this.svg);

      if (this.list) {
        this.list.addEventListener("click", (event) => {
          const li = event.target.closest("li[data-index]");
          if (li) this.select(Number(li.dataset.index));
        });
      }
      this.bindPointer();
      this.bindKeys();
      viewer.onChange(() => this.render());
      this.render();
    }

    /* ---------------------------------------------------------------- the state */

    load(boxes, options = {}) {
      const { preboxes = [], width = null, height = null, origin = false } = options;
      const fromPre = (pre) => ({ ...box(pre), pre: { ...pre }, accepted: false, touched: false });
      const given = (b) => ({ ...box(b), pre: { ...box(b) }, given: true, accepted: true, touched: false });
      const drawn = (b) => ({ ...box(b), pre: null, accepted: false, touched: true });
      const list = Array.isArray(boxes) ? boxes.map(origin ? given : drawn) : (preboxes || []).map(fromPre);
      return this.resume({ boxes: list, rejected: [], selected: -1, width, height });
    }

    resume(state) {
      this.state = state;
      state.selected = -1;
      this.gesture = null;
      this.render();
      return state;
    }

    clear() {
      this.state = null;
      this.gesture = null;
      this.render();
    }

    get busy() {
      return Boolean(this.gesture);
    }

    get selected() {
      return this.state ? this.state.selected : -1;
    }

    selectedBox() {
      const w = this.state;
      return w && w.selected >= 0 ? w.boxes[w.selected] : null;
    }

    boxes() {
      if (!this.state) return [];
      return this.state.boxes.map(rounded);
    }

    /* The boxes to send: the image's, each with how it came to be, then the rejected suggestions. */
    answer() {
      const w = this.state;
      if (!w) return [];
      const sent = w.boxes.map((b) => {
        const out = { ...rounded(b), outcome: outcome(b) };
        if (b.pre && typeof b.pre.confidence === "number") out.confidence = b.pre.confidence;
        return out;
      });
      w.rejected.forEach((pre) => {
        const out = { label: pre.label, x: pre.x, y: pre.y, w: pre.w, h: pre.h, outcome: "rejected" };
        if (typeof pre.confidence === "number") out.confidence = pre.confidence;
        sent.push(out);
      });
      return sent;
    }

    acceptAll() {
      const w = this.state;
      if (!w) return;
      w.boxes.forEach((b) => {
        if (isSuggested(b)) b.accepted = true; // left as it was: accepted
      });
      w.selected = -1;
    }

    rejectAll() {
      const w = this.state;
      if (!w) return;
      w.boxes.filter((b) => b.pre && !b.given).forEach((b) => w.rejected.push(b.pre));
      w.boxes = [];
      w.selected = -1;
    }

    static same(a, b) {
      const key = (list) =>
        (list || [])
          .map((x) => [x.label, ...["x", "y", "w", "h"].map((k) => round2(Number(x[k])).toFixed(2))].join(" "))
          .sort()
          .join("|");
      return key(a) === key(b);
    }

    /* ---------------------------------------------------------------- geometry */

    /* The image's size in its own pixels (those of the boxes): the state's, else the image element's. */
    dims() {
      const w = this.state;
      const natural = this.viewer.size();
      return { width: (w && w.width) || natural.width, height: (w && w.height) || natural.height };
    }

    /* Image pixels (those of the boxes) per layer pixel (the image element's natural pixels). */
    ratio() {
      const { width, height } = this.dims();
      const natural = this.viewer.size();
      return { x: width / natural.width, y: height / natural.height };
    }

    /* Image pixels per screen pixel: sizes meant in screen pixels (handles, tags) times this. */
    unit() {
      return this.ratio().x / this.viewer.scale;
    }

    toItem(clientX, clientY) {
      const p = this.viewer.toImage(clientX, clientY);
      const r = this.ratio();
      return { x: p.x * r.x, y: p.y * r.y };
    }

    clampPoint(p) {
      const { width, height } = this.dims();
      return { x: clamp(p.x, 0, width), y: clamp(p.y, 0, height) };
    }

    /* ---------------------------------------------------------------- drawing */

    /* Redraw the boxes, the layers, the class buttons and the list from the state. */
    render() {
      const w = this.state;
      this.boxGroup.replaceChildren();
      this.layerGroup.replaceChildren();
      display(this.svg, Boolean(w));
      this.renderButtons();
      this.renderList();
      if (w) {
        const { width, height } = this.dims();
        this.svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
        const k = this.unit();
        this.svg.style.setProperty("--u", String(k)); // app.css sizes strokes and dashes with it
        this.layers.forEach((layer, i) => {
          if (layer.shown !== false) this.layerGroup.append(this.layerEl(layer, i, k));
        });
        // Largest first, so that a box inside another stays clickable; the selected one on top.
        const area = (i) => w.boxes[i].w * w.boxes[i].h;
        const order = w.boxes.map((b, i) => i).sort((a, b) => area(b) - area(a));
        if (w.selected >= 0) order.push(...order.splice(order.indexOf(w.selected), 1));
        order.forEach((i) => this.boxGroup.append(this.boxEl(w.boxes[i], i, i === w.selected, k)));
        // Each tag's background as wide as its text, known once the text is in the document.
        this.svg.querySelectorAll(".box-tag, .layer-tag").forEach((tag) => {
          const text = tag.querySelector("text");
          const font = parseFloat(text.style.fontSize);
          tag.querySelector("rect").setAttribute("width", text.getComputedTextLength() + font * 0.7);
        });
        this.renderDraft();
        this.renderCrosshair();
      }
      this.onChange(this);
    }

    boxEl(b, index, selected, k) {
      const color = this.colors[b.label] || "#888";
      const g = svgEl("g", { class: "box", "data-index": index });
      g.classList.toggle("suggested", isSuggested(b));
      g.classList.toggle("selected", selected);
      g.style.setProperty("--box-color", color);
      const at = { x: b.x, y: b.y, width: b.w, height: b.h };
      g.append(svgEl("rect", { class: "box-halo", ...at }), svgEl("rect", { class: "box-rect", ...at }));

      // The tag: the class (and a suggestion's confidence), above the box, or inside it at the top edge.
      const font = TAG_PX * k;
      const tagH = font * 1.45;
      const top = b.y - tagH >= 0 ? b.y - tagH : b.y;
      const tag = svgEl("g", { class: "box-tag" });
      const bg = svgEl("rect", { class: "box-tag-bg", x: b.x, y: top, height: tagH });
      const text = svgEl("text", { x: b.x + font * 0.35, y: top + font * 1.08 });
      text.style.fontSize = `${font}px`;
      const conf = b.pre && isSuggested(b) && typeof b.pre.confidence === "number";
      text.textContent = conf ? `${b.label} ${Math.round(b.pre.confidence * 100)}%` : b.label;
      tag.style.setProperty("--tag-text", textColor(color));
      tag.append(bg, text);
      g.append(tag);

      if (selected) {
        const side = HANDLE_PX * k;
        const corners = { nw: [b.x, b.y], ne: [b.x + b.w, b.y], sw: [b.x, b.y + b.h], se: [b.x + b.w, b.y + b.h] };
        Object.entries(corners).forEach(([corner, [cx, cy]]) => {
          g.append(
            svgEl("rect", {
              class: `box-handle handle-${corner}`,
              "data-handle": corner,
              "data-index": index,
              x: cx - side / 2,
              y: cy - side / 2,
              width: side,
              height: side,
            })
          );
        });
      }
      return g;
    }

    /* A read-only layer: its boxes in its colour and dash, each tagged "name: class" inside it at its
       bottom edge (under it, when the box is too low for the tag). */
    layerEl(layer, index, k) {
      const color = layer.color || "#fff";
      const g = svgEl("g", { class: "box-layer-set", "data-layer": index });
      g.style.setProperty("--layer-color", color);
      const dash = String(layer.dash || "")
        .split(/[\s,]+/)
        .filter(Boolean)
        .map((v) => `${Number(v) * k}px`)
        .join(" ");
      g.style.setProperty("--layer-dash", dash || "none");
      const { height } = this.dims();
      const font = LAYER_TAG_PX * k;
      const tagH = font * 1.45;
      (layer.boxes || []).forEach((raw) => {
        const b = box(raw);
        const at = { x: b.x, y: b.y, width: b.w, height: b.h };
        const one = svgEl("g", { class: "layer-box", "data-label": b.label });
        one.append(svgEl("rect", { class: "layer-halo", ...at }), svgEl("rect", { class: "layer-rect", ...at }));
        // Inside the box at its bottom edge (the editable boxes' tags are above theirs); under a small box.
        const inside = b.h >= tagH * 1.8 || b.y + b.h + tagH > height;
        const top = inside ? b.y + b.h - tagH : b.y + b.h;
        const tag = svgEl("g", { class: "layer-tag" });
        const text = svgEl("text", { x: b.x + font * 0.35, y: top + font * 1.08 });
        text.style.fontSize = `${font}px`;
        text.textContent = layer.name ? `${layer.name}: ${b.label}` : b.label;
        tag.style.setProperty("--tag-text", textColor(color));
        tag.append(svgEl("rect", { class: "layer-tag-bg", x: b.x, y: top, height: tagH }), text);
        one.append(tag);
        g.append(one);
      });
      return g;
    }

    renderDraft() {
      const { gesture, draft } = this;
      display(draft, Boolean(gesture && gesture.kind === "draw"));
      if (!gesture || gesture.kind !== "draw") return;
      const r = rectBetween(gesture.from, gesture.to);
      setAttrs(draft, { x: r.x, y: r.y, width: r.w, height: r.h });
      draft.style.setProperty("--box-color", this.colors[this.currentClass] || "#888");
    }

    /* The crosshair: a line across the image each way through the pointer, while it is over the image. */
    renderCrosshair() {
      const { gesture, pointer } = this;
      const show = Boolean(pointer && this.state && !this.spaceHeld && (!gesture || gesture.kind === "draw"));
      const p = show ? this.toItem(pointer.x, pointer.y) : null;
      const { width, height } = this.dims();
      const inside = p && p.x >= 0 && p.y >= 0 && p.x <= width && p.y <= height;
      display(this.crossX, inside);
      display(this.crossY, inside);
      if (!inside) return;
      setAttrs(this.crossX, { x1: 0, x2: width, y1: p.y, y2: p.y });
      setAttrs(this.crossY, { x1: p.x, x2: p.x, y1: 0, y2: height });
    }

    /* The class buttons: each in its class's colour with the number of its boxes; the current class
       (the selected box's, while one is selected) chosen. */
    renderButtons() {
      const w = this.state;
      const chosen = w && w.selected >= 0 ? w.boxes[w.selected].label : this.currentClass;
      this.buttons.forEach((b) => {
        const name = b.dataset.label;
        b.style.setProperty("--box-color", this.colors[name] || "#888");
        b.classList.toggle("chosen", name === chosen);
        b.setAttribute("aria-pressed", String(name === chosen));
        const n = w ? w.boxes.filter((box) => box.label === name).length : 0;
        const conf = b.querySelector(".conf");
        if (conf) conf.textContent = n ? `×${n}` : "";
      });
    }

    /* The boxes listed beside the image (a click selects one). */
    renderList() {
      const list = this.list;
      const w = this.state;
      if (!list) return;
      list.replaceChildren();
      if (!w) return;
      w.boxes.forEach((b, i) => {
        const state = isSuggested(b) ? "suggested" : b.pre ? outcome(b) : "drawn";
        const li = document.createElement("li");
        li.dataset.index = i;
        li.dataset.label = b.label;
        li.dataset.state = state;
        li.classList.toggle("selected", i === w.selected);
        li.style.setProperty("--box-color", this.colors[b.label] || "#888");
        const name = document.createElement("span");
        name.className = "box-name";
        name.textContent = b.label;
        const shown = document.createElement("span");
        shown.className = "box-state";
        const confidence =
          b.pre && typeof b.pre.confidence === "number" ? ` ${Math.round(b.pre.confidence * 100)}%` : "";
        const word = this.words[state] || state;
        shown.textContent = state === "suggested" ? `${word}${confidence}` : word;
        const size = document.createElement("span");
        size.className = "box-size";
        size.textContent = `${Math.round(b.w)}×${Math.round(b.h)} at ${Math.round(b.x)}, ${Math.round(b.y)}`;
        li.append(name, shown, size);
        list.append(li);
      });
    }

    setLayers(layers) {
      this.layers = layers || [];
      this.render();
    }

    /* ---------------------------------------------------------------- editing */

    select(index) {
      const w = this.state;
      if (!w) return;
      w.selected = index >= 0 && index < w.boxes.length ? index : -1;
      this.render();
    }

    /* Change the selected box with ``change(box)``; a suggestion so changed becomes the annotator's. */
    edit(change) {
      const w = this.state;
      if (!w || w.selected < 0) return false;
      const b = w.boxes[w.selected];
      const before = JSON.stringify(box(b));
      change(b);
      ["x", "y", "w", "h"].forEach((key) => (b[key] = round2(b[key])));
      if (JSON.stringify(box(b)) !== before) b.touched = true;
      this.render();
      return true;
    }

    setClass(name) {
      this.currentClass = name;
      if (!this.edit((b) => (b.label = name))) this.render();
    }

    acceptSelected() {
      const w = this.state;
      const b = this.selectedBox();
      if (!b || !b.pre) return false;
      b.accepted = true;
      this.selectNextSuggested(w.selected);
      return true;
    }

    /* Select the next suggested box after ``from`` (round the list), or none. */
    selectNextSuggested(from) {
      const w = this.state;
      const n = w.boxes.length;
      for (let step = 1; step <= n; step += 1) {
        const i = (from + step + n) % n;
        if (isSuggested(w.boxes[i])) return this.select(i);
      }
      return this.select(-1);
    }

    deleteSelected() {
      const w = this.state;
      if (!w || w.selected < 0) return false;
      const [removed] = w.boxes.splice(w.selected, 1);
      if (removed.pre && !removed.given) {
        w.rejected.push(removed.pre);
        this.selectNextSuggested(w.selected - 1);
      } else {
        this.select(-1);
      }
      return true;
    }

    /* Arrow keys: nudge the selected box by ``step`` image pixels, or (resize) move its right or bottom edge. */
    nudge(key, step, resize) {
      const { width, height } = this.dims();
      const dx = { ArrowLeft: -step, ArrowRight: step }[key] || 0;
      const dy = { ArrowUp: -step, ArrowDown: step }[key] || 0;
      return this.edit((b) => {
        if (resize) {
          b.w = clamp(b.w + dx, MIN_SIDE, width - b.x);
          b.h = clamp(b.h + dy, MIN_SIDE, height - b.y);
        } else {
          b.x = clamp(b.x + dx, 0, width - b.w);
          b.y = clamp(b.y + dy, 0, height - b.h);
        }
      });
    }

    /* ---------------------------------------------------------------- the mouse */

    bindPointer() {
      const frame = this.frame;
      const viewer = this.viewer;
      frame.addEventListener("pointerdown", (event) => {
        const w = this.state;
        const img = viewer.img;
        if (!w || !img || img.hidden) return;
        if (event.button === 1) {
          // The middle button pans, as Space + drag does.
          event.preventDefault();
          this.gesture = { kind: "pan", id: event.pointerId, x: event.clientX, y: event.clientY };
          frame.setPointerCapture(event.pointerId);
          frame.dataset.dragging = "";
          return;
        }
        if (event.button !== 0 || this.spaceHeld) return;
        event.preventDefault();
        if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
        const p = this.toItem(event.clientX, event.clientY);
        const target = event.target instanceof Element ? event.target : null;
        const handle = target && target.closest("[data-handle]");
        const hit = target && target.closest("[data-index]");
        if (handle) {
          const index = Number(handle.dataset.index);
          const b = w.boxes[index];
          const fixed = {
            nw: { x: b.x + b.w, y: b.y + b.h },
            ne: { x: b.x, y: b.y + b.h },
            sw: { x: b.x + b.w, y: b.y },
            se: { x: b.x, y: b.y },
          }[handle.dataset.handle];
          this.gesture = { kind: "resize", id: event.pointerId, index, fixed, corner: handle.dataset.handle };
        } else if (hit && !event.shiftKey) {
          const index = Number(hit.dataset.index);
          this.select(index);
          this.gesture = { kind: "move", id: event.pointerId, index, from: p, start: box(w.boxes[index]) };
        } else {
          const at = this.clampPoint(p);
          this.gesture = { kind: "draw", id: event.pointerId, from: at, to: at };
        }
        const gesture = this.gesture;
        frame.dataset.gesture = gesture.kind === "resize" ? `resize-${gesture.corner}` : gesture.kind;
        frame.setPointerCapture(event.pointerId);
        this.render();
      });

      frame.addEventListener("pointermove", (event) => {
        this.pointer = { x: event.clientX, y: event.clientY };
        const gesture = this.gesture;
        if (!gesture || event.pointerId !== gesture.id) {
          this.renderCrosshair();
          return;
        }
        const w = this.state;
        if (gesture.kind === "pan") {
          viewer.panBy(event.clientX - gesture.x, event.clientY - gesture.y);
          gesture.x = event.clientX;
          gesture.y = event.clientY;
          return;
        }
        if (!w) return;
        const p = this.toItem(event.clientX, event.clientY);
        const { width, height } = this.dims();
        if (gesture.kind === "draw") {
          gesture.to = this.clampPoint(p);
          this.renderDraft();
          this.renderCrosshair();
        } else if (gesture.kind === "move") {
          const { start, from, index } = gesture;
          w.selected = index;
          this.edit((b) => {
            b.x = clamp(start.x + p.x - from.x, 0, width - start.w);
            b.y = clamp(start.y + p.y - from.y, 0, height - start.h);
          });
        } else if (gesture.kind === "resize") {
          const r = rectBetween(gesture.fixed, this.clampPoint(p));
          if (r.w < MIN_SIDE || r.h < MIN_SIDE) return; // never smaller than a box may be
          w.selected = gesture.index;
          this.edit((b) => Object.assign(b, r));
        }
      });

      const endGesture = (event) => {
        if (!this.gesture || event.pointerId !== this.gesture.id) return;
        const done = this.gesture;
        this.gesture = null;
        delete frame.dataset.gesture;
        delete frame.dataset.dragging;
        if (frame.hasPointerCapture(event.pointerId)) frame.releasePointerCapture(event.pointerId);
        const w = this.state;
        if (done.kind === "draw" && w && event.type === "pointerup") {
          const r = rectBetween(done.from, done.to);
          if (r.w < MIN_SIDE || r.h < MIN_SIDE) {
            w.selected = -1; // a click on the image, or a mis-click: no box, nothing selected
          } else if (this.currentClass) {
            const drawn = { label: this.currentClass, x: round2(r.x), y: round2(r.y), w: round2(r.w), h: round2(r.h) };
            w.boxes.push({ ...drawn, pre: null, accepted: false, touched: true });
            w.selected = w.boxes.length - 1;
          }
        }
        this.render();
      };
      frame.addEventListener("pointerup", endGesture);
      frame.addEventListener("pointercancel", endGesture);
      frame.addEventListener("pointerleave", () => {
        this.pointer = null;
        this.renderCrosshair();
      });
      frame.addEventListener("auxclick", (event) => event.preventDefault()); // no middle-click paste or scroll
    }

    /* ---------------------------------------------------------------- the keyboard */

    /* The focus is nowhere in particular (not on a control): Tab goes through the boxes. */
    focusFree() {
      const active = document.activeElement;
      return !active || active === document.body || this.frame.contains(active);
    }

    bindKeys() {
      document.addEventListener("keydown", (event) => {
        if (event.ctrlKey || event.metaKey || isTyping(event.target) || dialogOpen()) return;
        if (event.key === " " && this.focusFree()) {
          event.preventDefault();
          if (!this.spaceHeld) {
            this.spaceHeld = true;
            this.frame.classList.add("panning");
            this.renderCrosshair();
          }
          return;
        }
        const w = this.state;
        if (!w) return;
        if (event.key === "Tab" && w.boxes.length && this.focusFree()) {
          event.preventDefault();
          const n = w.boxes.length;
          const from = w.selected < 0 ? (event.shiftKey ? n : -1) : w.selected;
          this.select((from + (event.shiftKey ? -1 : 1) + n) % n);
          return;
        }
        if (event.key.startsWith("Arrow")) {
          event.preventDefault();
          const step = event.shiftKey ? 10 : 1;
          if (this.nudge(event.key, step, event.altKey) || event.altKey) return;
          const dx = { ArrowLeft: PAN_PX, ArrowRight: -PAN_PX }[event.key] || 0;
          const dy = { ArrowUp: PAN_PX, ArrowDown: -PAN_PX }[event.key] || 0;
          this.viewer.panBy(dx, dy); // nothing selected: the arrows look around the zoomed image
        }
      });
      const stopPanning = () => {
        if (!this.spaceHeld) return;
        this.spaceHeld = false;
        this.frame.classList.remove("panning");
        this.renderCrosshair();
      };
      document.addEventListener("keyup", (event) => {
        if (event.key === " ") stopPanning();
      });
      global.addEventListener("blur", stopPanning);
    }

    /* The help's rows for the editor's gestures and keys: ``extra`` after the box keys, then panning
       and the viewer's own (less its plain drag, which draws here). */
    helpRows(extra = []) {
      return [
        { key: "Drag", help: "Draw a box of the current class (from the image's empty part)" },
        { key: "Shift+Drag", help: "Draw a box even where it starts over another" },
        { key: "Click", help: "Select a box (Esc: none)" },
        { key: "Tab", help: "Select the next box (Shift+Tab: the previous one)" },
        { key: "Drag a box", help: "Move it; drag a corner of the selected box to resize it" },
        { key: "Arrows", help: "Move the selected box 1 pixel (Shift: 10); with none selected, look around" },
        { key: "Alt+Arrows", help: "Resize the selected box: move its right or bottom edge (Shift: 10)" },
        ...extra,
        { key: "Space+Drag", help: "Pan the zoomed image (or drag with the middle button)" },
        ...this.viewer.helpRows().filter((row) => row.key !== "Drag"),
      ];
    }
  }

  global.BoxEditor = BoxEditor;
})(window);
