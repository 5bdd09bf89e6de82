/* ImageViewer: one image in a frame, zoomed and panned with a CSS transform (no scrollbars), shared by
   the labeling, review and data browser pages. The wheel zooms at the pointer, + and - at the centre,
   = fits the image in the frame, * (or the 1:1 button) shows it at its natural size, a drag pans it
   (it can never leave the frame), and brightness and contrast sliders filter it; the filters stay as
   images change, the zoom goes back to the fit for each new image. Self-contained: needs no other
   script, and sets the few layout styles it relies on itself (app.css only adds the cursors and the
   controls' look).

   Markup:

     <div class="my-frame">                  the frame: any element with a size of its own; the viewer
       <img src="…" alt="…">                 makes it position: relative and overflow: hidden, and moves
     </div>                                  the image into a layer of its own, <div data-viewer-layer>
     {% include "annotator/partials/viewer.html" %}   the controls: zoom buttons, sliders, reset

   Script (after viewer.js):

     const viewer = new ImageViewer(frame, img, { controls: document.querySelector("[data-viewer-controls]") });
     viewer.bindKeymap(keymap);   // with keymap.js: the buttons' data-action and data-hotkey, and * for 1:1
     // or, on a page without a Keymap: viewer.bindControls(); (clicks on the controls, and the keys)
     viewer.show(nextImgOrUrl);   // a new image (an <img> element, or a URL for the current one), fitted

   With bindKeymap the controls must be inside the Keymap's root (its clicks and data-hotkey keys
   are the keymap's); use one of bindKeymap and bindControls, not both.

   Methods: show(img | url), fit(), actualSize(), zoomBy(factor, clientX?, clientY?) (at the centre
   without a point), panBy(dx, dy), setFilters({brightness, contrast}) (percent, 100 = unchanged),
   resetFilters(), toImage(clientX, clientY) and toClient(x, y) (screen point <-> image pixel),
   onChange(fn) (called after every change of the transform), helpRows() (the keys and gestures
   without a data-hotkey button, for the help overlay). Properties: scale (screen px per image px),
   x, y (where the image's top-left corner is, in px from the frame's padding box), zoomed (not at the
   fit), filters, layer, img; the frame element's imageViewer is the viewer.

   Overlays (boxes, points): put them inside viewer.layer, positioned in image pixels (left/top in px,
   or an <svg viewBox="0 0 W H"> with width and height 100%): the layer is W × H CSS px (the image's
   natural size) and carries the transform, so they follow the zoom and the pan with nothing to
   recompute (use vector-effect: non-scaling-stroke for lines of a constant width). Drawing on them
   needs the drag for itself: pass canPan: (event) => false-for-those-events in the options. */
(function (global) {
  "use strict";

  const ZOOM_STEP = 1.5; // + and -
  const WHEEL_RATE = Math.log(1.25) / 100; // one wheel notch (deltaY 100) zooms 1.25×
  const MAX_ZOOM = 16; // the most, in times the fit (and never less than 1:1)
  const DEFAULT_FILTERS = { brightness: 100, contrast: 100 }; // percent
  const EPSILON = 1e-6;

  class ImageViewer {
    /* container: the frame; img: the image (or null, to show one later); options: controls (the
       element holding the sliders and the reset button), maxZoom, canPan(pointerEvent). */
    constructor(container, img, options = {}) {
      this.container = container;
      this.maxZoom = options.maxZoom || MAX_ZOOM;
      this.canPan = options.canPan || (() => true);
      this.scale = 1;
      this.x = 0;
      this.y = 0;
      this.fitted = true; // follows the frame's size until zoomed or panned
      this.filters = { ...DEFAULT_FILTERS };
      this.listeners = [];
      this.sliders = [];
      this.img = null;
      this.view = { width: container.clientWidth, height: container.clientHeight };

      container.dataset.viewer = "";
      container.imageViewer = this; // for scripts (and tests) that have only the frame element
      if (getComputedStyle(container).position === "static") container.style.position = "relative";
      container.style.overflow = "hidden";
      container.style.touchAction = "none";
      this.layer = document.createElement("div");
      this.layer.dataset.viewerLayer = "";
      Object.assign(this.layer.style, { position: "absolute", left: "0", top: "0", transformOrigin: "0 0" });
      container.prepend(this.layer);

      this.bindPointer();
      this.bindWheel();
      if (global.ResizeObserver) new ResizeObserver(() => this.resized()).observe(container);
      else global.addEventListener("resize", () => this.resized());
      if (options.controls) this.bindFilters(options.controls);
      if (img) this.show(img);
    }

    /* Show an image, fitted: an <img> element (it takes the current one's place), or a URL for the current one. */
    show(image) {
      if (typeof image === "string") {
        const src = image;
        image = this.img || new Image();
        image.src = src;
      }
      if (image !== this.img) {
        if (this.img && this.img.parentNode === this.layer) this.img.replaceWith(image);
        else this.layer.append(image);
        this.img = image;
      }
      image.draggable = false;
      Object.assign(image.style, {
        verticalAlign: "top",
        width: "100%",
        height: "100%",
        maxWidth: "none",
        maxHeight: "none",
        margin: "0",
      });
      this.applyFilters();
      this.fit();
      if (!(image.complete && image.naturalWidth)) {
        image.addEventListener("load", () => this.img === image && this.fit(), { once: true });
      }
    }

    /* The image's size in its own pixels (the frame's before it has one, so that its alt text shows). */
    size() {
      const img = this.img;
      if (img && img.naturalWidth && img.naturalHeight) return { width: img.naturalWidth, height: img.naturalHeight };
      return { width: this.container.clientWidth || 1, height: this.container.clientHeight || 1 };
    }

    /* The scale at which the whole image fits in the frame. */
    fitScale() {
      const { width, height } = this.size();
      const cw = this.container.clientWidth;
      const ch = this.container.clientHeight;
      if (!cw || !ch) return 1;
      return Math.min(cw / width, ch / height);
    }

    get zoomed() {
      return Math.abs(this.scale - this.fitScale()) > EPSILON * this.scale;
    }

    fit() {
      const { width, height } = this.size();
      this.scale = this.fitScale();
      this.x = (this.container.clientWidth - width * this.scale) / 2;
      this.y = (this.container.clientHeight - height * this.scale) / 2;
      this.fitted = true;
      this.apply();
    }

    /* 1:1: one image pixel per CSS pixel, around the frame's centre. */
    actualSize() {
      this.scaleAt(1, this.container.clientWidth / 2, this.container.clientHeight / 2, true);
    }

    /* Zoom by ``factor`` keeping the image point under (clientX, clientY) where it is; at the frame's
       centre without a point. Never below the fit (unless already there, after 1:1 on a small image). */
    zoomBy(factor, clientX, clientY) {
      let lx = this.container.clientWidth / 2;
      let ly = this.container.clientHeight / 2;
      if (clientX !== undefined && clientY !== undefined) [lx, ly] = this.local(clientX, clientY);
      this.scaleAt(this.scale * factor, lx, ly, false);
    }

    scaleAt(target, lx, ly, exact) {
      const fit = this.fitScale();
      const most = Math.max(fit * this.maxZoom, 1);
      const scale = exact ? target : Math.min(Math.max(target, Math.min(fit, this.scale)), most);
      if (!exact && Math.abs(scale - fit) <= EPSILON * fit) {
        this.fit();
        return;
      }
      this.x = lx - ((lx - this.x) / this.scale) * scale;
      this.y = ly - ((ly - this.y) / this.scale) * scale;
      this.scale = scale;
      this.fitted = false;
      this.clamp();
      this.apply();
    }

    panBy(dx, dy) {
      if (!dx && !dy) return;
      this.x += dx;
      this.y += dy;
      this.fitted = false;
      this.clamp();
      this.apply();
    }

    /* Keep the image in view: no farther than the frame's edges when it is smaller than the frame,
       covering the frame when it is larger. */
    clamp() {
      const { width, height } = this.size();
      const inRange = (at, extent, view) =>
        extent <= view ? Math.min(Math.max(at, 0), view - extent) : Math.min(Math.max(at, view - extent), 0);
      this.x = inRange(this.x, width * this.scale, this.container.clientWidth);
      this.y = inRange(this.y, height * this.scale, this.container.clientHeight);
    }

    apply() {
      const { width, height } = this.size();
      this.layer.style.width = `${width}px`;
      this.layer.style.height = `${height}px`;
      this.layer.style.transform = `translate(${this.x}px, ${this.y}px) scale(${this.scale})`;
      this.listeners.forEach((listener) => listener(this));
    }

    onChange(listener) {
      this.listeners.push(listener);
      return this;
    }

    /* The frame changed size: refit a fitted image, else keep the same point at the centre. */
    resized() {
      const width = this.container.clientWidth;
      const height = this.container.clientHeight;
      const before = this.view;
      this.view = { width, height };
      if (!this.img) return;
      if (this.fitted) {
        this.fit();
        return;
      }
      this.x += (width - before.width) / 2;
      this.y += (height - before.height) / 2;
      this.clamp();
      this.apply();
    }

    /* A screen (client) point in the frame's padding box, where the layer's transform starts. */
    local(clientX, clientY) {
      const rect = this.container.getBoundingClientRect();
      return [clientX - rect.left - this.container.clientLeft, clientY - rect.top - this.container.clientTop];
    }

    /* The image pixel coordinates (fractional; 0..width, 0..height) under a screen (client) point. */
    toImage(clientX, clientY) {
      const [lx, ly] = this.local(clientX, clientY);
      return { x: (lx - this.x) / this.scale, y: (ly - this.y) / this.scale };
    }

    /* The screen (client) point of an image pixel coordinate. */
    toClient(x, y) {
      const rect = this.container.getBoundingClientRect();
      return {
        x: rect.left + this.container.clientLeft + this.x + x * this.scale,
        y: rect.top + this.container.clientTop + this.y + y * this.scale,
      };
    }

    bindPointer() {
      const frame = this.container;
      let drag = null;
      const end = (event) => {
        if (!drag || event.pointerId !== drag.id) return;
        drag = null;
        delete frame.dataset.dragging;
        if (frame.hasPointerCapture(event.pointerId)) frame.releasePointerCapture(event.pointerId);
      };
      frame.addEventListener("pointerdown", (event) => {
        if (event.button !== 0 || !this.img || this.img.hidden || !this.canPan(event)) return;
        event.preventDefault();
        drag = { id: event.pointerId, x: event.clientX, y: event.clientY };
        frame.setPointerCapture(event.pointerId);
        frame.dataset.dragging = "";
      });
      frame.addEventListener("pointermove", (event) => {
        if (!drag || event.pointerId !== drag.id) return;
        this.panBy(event.clientX - drag.x, event.clientY - drag.y);
        drag.x = event.clientX;
        drag.y = event.clientY;
      });
      frame.addEventListener("pointerup", end);
      frame.addEventListener("pointercancel", end);
      frame.addEventListener("dragstart", (event) => event.preventDefault());
    }

    bindWheel() {
      this.container.addEventListener(
        "wheel",
        (event) => {
          if (!this.img || this.img.hidden) return;
          event.preventDefault();
          const unit = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? this.container.clientHeight : 1;
          const factor = Math.exp(-event.deltaY * unit * WHEEL_RATE);
          this.zoomBy(Math.min(Math.max(factor, 0.5), 2), event.clientX, event.clientY);
        },
        { passive: false }
      );
    }

    /* percent values, 100 = the image as it is; kept for the images shown after. */
    setFilters(values) {
      Object.keys(DEFAULT_FILTERS).forEach((name) => {
        const value = Number(values[name]);
        if (values[name] !== undefined && Number.isFinite(value)) this.filters[name] = value;
      });
      this.applyFilters();
      this.sliders.forEach((slider) => {
        slider.value = String(this.filters[slider.dataset.viewerFilter]);
        const shown = slider.closest("label") && slider.closest("label").querySelector("[data-viewer-value]");
        if (shown) shown.textContent = `${this.filters[slider.dataset.viewerFilter]}%`;
      });
    }

    resetFilters() {
      this.setFilters(DEFAULT_FILTERS);
    }

    applyFilters() {
      if (!this.img) return;
      const { brightness, contrast } = this.filters;
      const plain = brightness === 100 && contrast === 100;
      this.img.style.filter = plain ? "" : `brightness(${brightness / 100}) contrast(${contrast / 100})`;
    }

    /* The sliders ([data-viewer-filter="brightness" | "contrast"], range inputs in percent) and the
       reset button ([data-viewer-reset]) in ``controls``. A slider moved with the pointer gives the
       focus back, so that the page's keys work again at once. */
    bindFilters(controls) {
      this.sliders = Array.from(controls.querySelectorAll("[data-viewer-filter]"));
      this.sliders.forEach((slider) => {
        let byPointer = false;
        slider.addEventListener("pointerdown", () => (byPointer = true));
        slider.addEventListener("keydown", () => (byPointer = false));
        slider.addEventListener("input", () => this.setFilters({ [slider.dataset.viewerFilter]: slider.value }));
        slider.addEventListener("change", () => {
          if (byPointer) slider.blur();
        });
      });
      const reset = controls.querySelector("[data-viewer-reset]");
      if (reset) reset.addEventListener("click", () => this.resetFilters());
      this.setFilters(this.filters);
    }

    /* The zoom actions through a keymap.js Keymap: the buttons' data-action (zoom-in, zoom-out,
       zoom-fit, zoom-actual) and * for 1:1 (a key no class can have). */
    bindKeymap(keymap) {
      keymap
        .on("zoom-in", () => this.zoomBy(ZOOM_STEP))
        .on("zoom-out", () => this.zoomBy(1 / ZOOM_STEP))
        .on("zoom-fit", () => this.fit())
        .on("zoom-actual", () => this.actualSize())
        .bindKey("*", "zoom-actual");
      return this;
    }

    /* Without a Keymap: clicks on the zoom buttons under ``root`` and the keys + - = * (not while typing). */
    bindControls(root = document) {
      const actions = {
        "zoom-in": () => this.zoomBy(ZOOM_STEP),
        "zoom-out": () => this.zoomBy(1 / ZOOM_STEP),
        "zoom-fit": () => this.fit(),
        "zoom-actual": () => this.actualSize(),
      };
      const keys = { "+": "zoom-in", "-": "zoom-out", "=": "zoom-fit", "*": "zoom-actual" };
      root.addEventListener("click", (event) => {
        const button = event.target.closest("[data-action]");
        if (button && actions[button.dataset.action]) actions[button.dataset.action]();
      });
      document.addEventListener("keydown", (event) => {
        const target = event.target;
        const typing = target && (/^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) || target.isContentEditable);
        if (typing || event.ctrlKey || event.metaKey || event.altKey || !keys[event.key]) return;
        event.preventDefault();
        actions[keys[event.key]]();
      });
      return this;
    }

    /* What the help overlay lists besides the data-hotkey buttons. */
    helpRows() {
      return [
        { key: "*", help: "Show the image at its natural size (1:1)" },
        { key: "Wheel", help: "Zoom in or out at the pointer" },
        { key: "Drag", help: "Move the zoomed image" },
      ];
    }
  }

  global.ImageViewer = ImageViewer;
})(window);
