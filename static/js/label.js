/* The labeling page: shows the next leased item with its pre-label, posts labels without
   waiting, and keeps the project's figures current. The prefetch queue, the history (Backspace),
   the image stage and the help dialog are stage.js's, the image's zoom, pan and filters viewer.js's. */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("label-config").textContent);
  const $ = (id) => document.getElementById(id);
  const buttons = Array.from(document.querySelectorAll(".class-button"));
  const { request, postRetried } = Api;
  const setStatus = Stage.status;
  let pending = 0; // labels still being sent: the page asks before it is left

  const stage = Stage.createStage();
  const queue = Stage.createQueue({
    ahead: 3,
    answerBringsNext: true,
    next: (held) => request("GET", `/projects/${config.project}/next/?exclude=${held.join(",")}`),
    stage,
    onShow: paint,
    onEmpty: () => {
      $("prelabel").textContent = "";
      Stage.clearButtons(buttons);
    },
  });

  /* The class buttons and the pre-label line for the item on screen. */
  function paint(item, revising) {
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
        Stage.choose(b, revising && item.label === b.dataset.label);
        b.querySelector(".conf").textContent = isPre ? ` ${Math.round(pre.confidence * 100)}%` : "";
      });
    }
    const line = $("prelabel");
    line.innerHTML = "";
    line.classList.toggle("unsure", unsure);
    if (unsure) {
      const conf = pre.confidence == null ? "" : ` (${Math.round(pre.confidence * 100)}%)`;
      const how = config.multi_label ? "keys toggle classes, Enter submits" : "choose a class";
      line.textContent = `Model v${pre.model_version} is unsure${conf}: ${how}`;
    } else if (pre && config.multi_label) {
      const names = predictedSet(pre);
      line.textContent =
        `Model v${pre.model_version} suggests ${names.length ? names.join(", ") : "none of the classes"}` +
        " — keys toggle classes, Enter submits";
    } else if (pre) {
      const text = document.createElement("span");
      text.textContent = `Model v${pre.model_version} suggests `;
      const b = document.createElement("b");
      b.textContent = pre.label;
      const conf = document.createElement("span");
      conf.textContent = ` (${Math.round(pre.confidence * 100)}% confident) — Enter accepts`;
      line.append(text, b, conf);
    } else if (!config.show_prelabels) {
      line.textContent = "Pre-labels are hidden in this project.";
    } else {
      line.textContent = "No pre-label yet: the model trains as labels come in.";
    }
  }

  /* Multi-label: the classes the model gives at least even odds. */
  function predictedSet(pre) {
    if (!pre || !pre.probs) return [];
    return config.classes.filter((c, i) => pre.probs[i] >= 0.5).map((c) => c.name);
  }

  function renderSelection() {
    const selected = queue.current ? queue.current.item.selected : null;
    buttons.forEach((b) => Stage.choose(b, Boolean(selected && selected.has(b.dataset.label))));
  }

  function toggle(name) {
    if (!queue.current) return;
    const selected = queue.current.item.selected;
    if (selected.has(name)) selected.delete(name);
    else selected.add(name);
    renderSelection();
  }

  /* The undone item comes back on screen to be labeled again: out of the history and the queue. */
  function undoItem(item) {
    const other = (i) => i.id !== item.id;
    queue.history = queue.history.filter(other);
    queue.upcoming = queue.upcoming.filter(other);
    queue.forward = queue.forward.filter(other);
    if (queue.current && queue.current.item.id !== item.id) queue.forward.push(queue.current.item);
    queue.show(Stage.preload(item), false);
  }

  function submit(labelName) {
    if (!queue.current) return;
    const { item, shownAt } = queue.current;
    const body = { client_token: Api.newToken(), duration_ms: Math.round(performance.now() - shownAt) };
    if (config.multi_label) {
      const order = config.classes.map((c) => c.name);
      item.labels = order.filter((name) => item.selected.has(name));
      body.labels = item.labels;
      labelName = item.labels.length ? item.labels.join(", ") : "no class";
    } else {
      body.label = labelName;
    }
    item.label = labelName;
    pending += 1;
    queue.advance((_, query) =>
      postRetried(`/items/${item.id}/annotations/${query}`, body)
        .then((response) => {
          setStatus(`Saved “${labelName}” for ${item.filename}.`);
          bumpCounts();
          return response;
        })
        .catch((error) => setStatus(`Label for ${item.filename} was NOT saved: ${error.message}`, "error"))
        .finally(() => (pending -= 1))
    );
  }

  function skip() {
    if (!queue.current) return;
    queue.current.item.label = null;
    queue.advance((item, query) =>
      postRetried(`/items/${item.id}/skip/${query}`, {}).catch((e) => setStatus(`Skip failed: ${e.message}`, "error"))
    );
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
      const pre = queue.current && queue.current.item.prelabel;
      if (pre && pre.unsure) setStatus("The model is unsure; choose a class.", "warn");
      else if (pre) submit(pre.label);
      else setStatus("There is no pre-label to accept yet.", "warn");
    })
    .on("skip", skip)
    .on("back", queue.back)
    .on("undo", () => {
      postRetried(`/projects/${config.project}/undo/`, { client_token: Api.newToken() })
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
    });
  stage.bindZoom(keymap);
  keymap.bindElements();
  Stage.bindHelp(keymap, stage.viewer.helpRows());

  Stage.bindLifecycle({ queue, project: config.project, refreshCounts, refreshMs: REFRESH_MS, pending: () => pending });
})();
