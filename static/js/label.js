/* The labeling page: shows the next leased item with its pre-label, posts labels without
   waiting, prefetches the next items and their images, and lets Backspace revisit earlier ones. */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("label-config").textContent);
  const AHEAD = 3;
  const $ = (id) => document.getElementById(id);
  let image = $("item-image");
  let zoom = 1;
  const buttons = Array.from(document.querySelectorAll(".class-button"));

  const state = {
    current: null, // {item, shownAt, revising}
    queue: [], // prefetched items, images loading or loaded
    history: [], // items labeled or skipped in this session, newest last
    forward: [], // items to come back to after revising an earlier one
    fetching: false,
    exhausted: false,
    pending: 0,
    posting: new Set(), // ids of items whose label or skip is still being sent: still leased to us
  };

  const { request } = Api;

  function setStatus(text, kind) {
    const el = $("status");
    el.textContent = text || "";
    el.className = "status" + (kind ? " " + kind : "");
  }

  function preload(item) {
    const img = new Image();
    item.ready = new Promise((resolve) => {
      img.onload = () => (img.decode ? img.decode().catch(() => {}) : Promise.resolve()).then(resolve);
      img.onerror = resolve;
    });
    img.src = item.image_url;
    item.preloaded = img;
    return item;
  }

  function heldIds() {
    const ids = state.queue.map((i) => i.id).concat(state.forward.map((i) => i.id), Array.from(state.posting));
    if (state.current) ids.push(state.current.item.id);
    return ids;
  }

  async function fill() {
    if (state.fetching || state.exhausted) return;
    state.fetching = true;
    try {
      while (state.queue.length < AHEAD && !state.exhausted) {
        const item = await request("GET", `/projects/${config.project}/next/?exclude=${heldIds().join(",")}`);
        if (!item) {
          state.exhausted = true;
          break;
        }
        state.queue.push(preload(item));
        if (!state.current) showNext();
      }
    } catch (error) {
      setStatus(`Could not fetch the next item: ${error.message}`, "error");
      setTimeout(() => {
        state.fetching = false;
        fill();
      }, 2000);
      return;
    } finally {
      state.fetching = false;
    }
    if (!state.current) showNext();
  }

  function show(item, revising) {
    state.current = { item, shownAt: performance.now(), revising };
    $("loading").hidden = true;
    $("empty").hidden = true;
    // Swap in the prefetched, already decoded image element: no network, no decode on the key press.
    const next = item.preloaded || new Image();
    if (!item.preloaded) next.src = item.image_url;
    item.preloaded = null;
    next.id = "item-image";
    next.className = "item-image";
    next.alt = item.filename;
    next.dataset.item = item.id;
    if (next !== image) image.replaceWith(next);
    image = next;
    image.hidden = false;
    applyZoom();
    $("item-name").textContent = item.filename;
    $("revising").hidden = !revising;
    const pre = item.prelabel;
    const unsure = Boolean(pre && pre.unsure); // less confident than the project's threshold: no suggestion
    if (config.multi_label) {
      // Start from the earlier answer when revising, else from the model's set unless it is unsure: Enter accepts it.
      const predicted = unsure ? [] : predictedSet(pre);
      item.selected = new Set(revising && item.labels ? item.labels : predicted);
      buttons.forEach((b, i) => {
        const p = pre && pre.probs ? pre.probs[i] : null;
        b.classList.toggle("prelabel", predicted.includes(b.dataset.label));
        b.querySelector(".conf").textContent = p == null ? "" : ` ${Math.round(p * 100)}%`;
      });
      renderSelection();
    } else {
      buttons.forEach((b) => {
        const isPre = pre && !unsure && b.dataset.label === pre.label;
        b.classList.toggle("prelabel", Boolean(isPre));
        b.classList.toggle("chosen", revising && item.label === b.dataset.label);
        b.querySelector(".conf").textContent = isPre ? ` ${Math.round(pre.confidence * 100)}%` : "";
      });
    }
    $("prelabel").innerHTML = "";
    $("prelabel").classList.toggle("unsure", unsure);
    if (unsure) {
      const conf = pre.confidence == null ? "" : ` (${Math.round(pre.confidence * 100)}%)`;
      const how = config.multi_label ? "keys toggle classes, Enter submits" : "choose a class";
      $("prelabel").textContent = `Model v${pre.model_version} is unsure${conf}: ${how}`;
    } else if (pre && config.multi_label) {
      const names = predictedSet(pre);
      $("prelabel").textContent =
        `Model v${pre.model_version} suggests ${names.length ? names.join(", ") : "none of the classes"}` +
        " — keys toggle classes, Enter submits";
    } else if (pre) {
      const text = document.createElement("span");
      text.textContent = `Model v${pre.model_version} suggests `;
      const b = document.createElement("b");
      b.textContent = pre.label;
      const conf = document.createElement("span");
      conf.textContent = ` (${Math.round(pre.confidence * 100)}% confident) — Enter accepts`;
      $("prelabel").append(text, b, conf);
    } else if (!config.show_prelabels) {
      $("prelabel").textContent = "Pre-labels are hidden in this project.";
    } else {
      $("prelabel").textContent = "No pre-label yet: the model trains as labels come in.";
    }
    // Announce the item once its image is in the page, in the frame that paints it.
    const shownImage = image;
    const announce = () =>
      requestAnimationFrame(() =>
        document.dispatchEvent(
          new CustomEvent("item-shown", { detail: { id: item.id, at: performance.now(), ready: shownImage.complete } })
        )
      );
    if (image.complete) announce();
    else image.addEventListener("load", announce, { once: true });
  }

  function applyZoom() {
    const frame = $("stage-frame");
    frame.classList.toggle("zoomed", zoom !== 1);
    if (zoom === 1) {
      image.style.width = "";
      image.style.height = "";
    } else {
      const base = Math.min(frame.clientWidth / (image.naturalWidth || 1), frame.clientHeight / (image.naturalHeight || 1));
      image.style.width = `${Math.round((image.naturalWidth || 1) * base * zoom)}px`;
      image.style.height = "auto";
    }
  }

  /* Multi-label: the classes the model gives at least even odds. */
  function predictedSet(pre) {
    if (!pre || !pre.probs) return [];
    return config.classes.filter((c, i) => pre.probs[i] >= 0.5).map((c) => c.name);
  }

  function renderSelection() {
    const selected = state.current ? state.current.item.selected : null;
    buttons.forEach((b) => b.classList.toggle("chosen", Boolean(selected && selected.has(b.dataset.label))));
  }

  function toggle(name) {
    if (!state.current) return;
    const selected = state.current.item.selected;
    if (selected.has(name)) selected.delete(name);
    else selected.add(name);
    renderSelection();
  }

  function renderHelp() {
    const table = $("help-keys");
    table.innerHTML = "";
    keymap.describe().forEach(({ key, help }) => {
      const row = table.insertRow();
      const kbd = document.createElement("kbd");
      kbd.textContent = key;
      row.insertCell().append(kbd);
      row.insertCell().textContent = help;
    });
  }

  function undoItem(item) {
    // The undone item comes back on screen to be labeled again; drop it from the session's history.
    state.history = state.history.filter((i) => i.id !== item.id);
    state.queue = state.queue.filter((i) => i.id !== item.id);
    state.forward = state.forward.filter((i) => i.id !== item.id);
    if (state.current && state.current.item.id !== item.id) state.forward.push(state.current.item);
    show(preload(item), false);
  }

  function showNext() {
    const item = state.forward.pop() || state.queue.shift();
    if (!item) {
      state.current = null;
      image.hidden = true;
      $("loading").hidden = !(state.fetching || !state.exhausted);
      $("empty").hidden = !state.exhausted;
      $("item-name").textContent = "";
      $("prelabel").textContent = "";
      if (!state.exhausted) fill();
      return;
    }
    show(item, false);
    fill();
  }

  function newToken() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `${Date.now()}-${Math.random().toString(16).slice(2)}`;
  }

  /* POST, retried on network errors and 5xx: only for requests that are safe to repeat. A label
     and an undo carry a client_token (the same one on every retry) so that the server answers a
     repeat without doing it twice; skip and release do nothing more the second time. */
  async function post(path, body, attempt) {
    try {
      return await request("POST", path, body);
    } catch (error) {
      if (error.status && error.status < 500) throw error;
      if (attempt >= 5) throw error;
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
      return post(path, body, attempt + 1);
    }
  }

  function submit(labelName) {
    if (!state.current) return;
    const { item, shownAt } = state.current;
    const body = { client_token: newToken(), duration_ms: Math.round(performance.now() - shownAt) };
    if (config.multi_label) {
      const order = config.classes.map((c) => c.name);
      item.labels = order.filter((name) => item.selected.has(name));
      body.labels = item.labels;
      labelName = item.labels.length ? item.labels.join(", ") : "no class";
    } else {
      body.label = labelName;
    }
    item.label = labelName;
    state.history.push(item);
    state.pending += 1;
    state.posting.add(item.id);
    post(`/items/${item.id}/annotations/`, body, 0)
      .then(() => {
        setStatus(`Saved “${labelName}” for ${item.filename}.`);
        bumpCounts();
      })
      .catch((error) => setStatus(`Label for ${item.filename} was NOT saved: ${error.message}`, "error"))
      .finally(() => {
        state.pending -= 1;
        state.posting.delete(item.id);
      });
    showNext();
  }

  const REFRESH_MS = 5000;
  let countsTimer = null;
  let servedModel = config.model_version || 0; // the newest model number this page has told of
  function bumpCounts() {
    if (countsTimer) return;
    countsTimer = setTimeout(refreshCounts, 400);
  }

  /* The project's figures: counts, the model serving (told once when a newer one starts), the next
     retrain, and the classes with too few labels. */
  async function refreshCounts() {
    countsTimer = null;
    try {
      const project = await request("GET", `/projects/${config.project}/`);
      $("count-labeled").textContent = project.counts.labeled;
      $("count-unlabeled").textContent = project.counts.unlabeled;
      const mv = project.model_version;
      $("model-info").textContent = mv ? `Model v${mv.number} · accuracy ${Figures.accuracy(mv.metrics)}` : "No model yet";
      if (mv && mv.number > servedModel) {
        servedModel = mv.number;
        setStatus(`Model v${mv.number} is now serving: accuracy ${Figures.accuracy(mv.metrics)}`);
      }
      const n = project.retrain.labels_until_next;
      $("retrain-info").textContent = project.retrain.training
        ? "Training a new model…"
        : `Next model in ${n} label${n === 1 ? "" : "s"}`;
      const warning = Figures.underCovered(project.under_covered);
      $("under-covered").textContent = warning;
      $("under-covered").hidden = !warning;
    } catch (error) {
      /* counts are informative only */
    }
  }

  const keymap = new Keymap(document.querySelector(".label-layout"));
  keymap
    .on("label", (el) => (config.multi_label ? toggle(el.dataset.label) : submit(el.dataset.label)))
    .on("accept", () => {
      if (config.multi_label) {
        submit(null);
        return;
      }
      const pre = state.current && state.current.item.prelabel;
      if (pre && pre.unsure) setStatus("The model is unsure; choose a class.", "warn");
      else if (pre) submit(pre.label);
      else setStatus("There is no pre-label to accept yet.", "warn");
    })
    .on("skip", () => {
      if (!state.current) return;
      const { item } = state.current;
      item.label = null;
      state.history.push(item);
      state.posting.add(item.id);
      post(`/items/${item.id}/skip/`, {}, 0)
        .catch((e) => setStatus(`Skip failed: ${e.message}`, "error"))
        .finally(() => state.posting.delete(item.id));
      showNext();
    })
    .on("back", () => {
      const previous = state.history.pop();
      if (!previous) {
        setStatus("No earlier item in this session.", "warn");
        return;
      }
      if (state.current) state.forward.push(state.current.item);
      show(previous, true);
    })
    .on("undo", () => {
      post(`/projects/${config.project}/undo/`, { client_token: newToken() }, 0)
        .then((item) => {
          if (!item) {
            setStatus("Nothing to undo.", "warn");
            return;
          }
          undoItem(item);
          setStatus(`Undid the label of ${item.filename}.`);
          bumpCounts();
        })
        .catch((e) => setStatus(`Undo failed: ${e.message}`, "error"));
    })
    .on("zoom-in", () => {
      zoom = Math.min(zoom * 1.5, 16);
      applyZoom();
    })
    .on("zoom-out", () => {
      zoom = Math.max(zoom / 1.5, 1);
      applyZoom();
    })
    .on("zoom-fit", () => {
      zoom = 1;
      applyZoom();
    })
    .on("help", () => {
      $("help").hidden = !$("help").hidden;
    })
    .bindElements();
  renderHelp();
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") $("help").hidden = true;
  });
  $("help").addEventListener("click", (event) => {
    if (event.target === $("help")) $("help").hidden = true;
  });
  $("stage-frame").addEventListener(
    "wheel",
    (event) => {
      if (!event.ctrlKey) return;
      event.preventDefault();
      zoom = Math.min(Math.max(zoom * (event.deltaY < 0 ? 1.25 : 0.8), 1), 16);
      applyZoom();
    },
    { passive: false }
  );
  window.addEventListener("resize", applyZoom);

  setInterval(() => {
    if (!document.hidden) refreshCounts();
  }, REFRESH_MS);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refreshCounts();
  });
  refreshCounts();
  window.addEventListener("beforeunload", (event) => {
    if (state.pending > 0) event.preventDefault();
  });
  fill();
})();
