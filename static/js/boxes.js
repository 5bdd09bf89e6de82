/* The box labeling page (label_boxes.html): the next leased image, large in viewer.js's ImageViewer,
   with its boxes drawn over it and edited there by box_editor.js's BoxEditor (a drag draws a box of
   the current class, a class key chooses it and changes the selected box's; click or Tab selects,
   drag moves, corners resize, arrows nudge, Alt+arrows resize; Space + drag or the middle button
   pans, the wheel zooms, a crosshair follows the pointer). The model's suggested boxes show dashed
   until accepted (A), rejected (Delete, X) or edited; Enter saves the image's boxes (suggestions left
   as they are count as accepted), N saves "nothing here". Answers are posted without waiting, with
   the time spent on the image; the prefetch queue, Backspace (back), the stage and the help are
   stage.js's. */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("label-config").textContent);
  const $ = (id) => document.getElementById(id);
  const { request, postRetried } = Api;
  const setStatus = Stage.status;

  let pending = 0; // answers still being sent: the page asks before it is left

  const stage = Stage.createStage();
  const buttons = Array.from(document.querySelectorAll(".class-button"));
  /* The image's boxes, drawn over the viewer and edited there (box_editor.js). */
  const editor = new BoxEditor(stage.viewer, {
    classes: config.classes,
    buttons,
    list: $("box-list"),
    onChange: summarise,
  });

  const queue = Stage.createQueue({
    ahead: 3,
    answerBringsNext: true,
    next: (held) => request("GET", `/projects/${config.project}/next/?exclude=${held.join(",")}`),
    stage,
    onShow: paint,
    onEmpty: () => {
      $("prelabel").textContent = "";
      editor.clear();
    },
  });

  /* ------------------------------------------------------------------ drawing */

  /* The item's boxes in the editor: those being edited (kept on the item, for Backspace and undo),
     else its saved boxes, else the model's suggestions; and the line that says what to do. */
  function paint(item, revising) {
    if (item.work) editor.resume(item.work);
    else item.work = editor.load(item.boxes, { preboxes: item.preboxes, width: item.width, height: item.height });
    const line = $("prelabel");
    const suggested = (item.preboxes || []).length;
    const keys = config.keys || {};
    if (revising) {
      line.textContent = "Your saved boxes: change them and press Enter to save again.";
    } else if (!config.show_prelabels) {
      line.textContent = "Pre-labels are hidden in this project: drag on the image to draw the boxes.";
    } else if (!suggested) {
      line.textContent = "No suggested boxes: drag on the image to draw them.";
    } else {
      const accept = keys.accept ? `${keys.accept.toUpperCase()} accepts the selected one, ` : "";
      const reject = keys.reject ? keys.reject.toUpperCase() : "Delete";
      line.textContent =
        `The model suggests ${suggested} box${suggested === 1 ? "" : "es"} (dashed): ${accept}` +
        `${reject} rejects it; Enter accepts the rest.`;
    }
  }

  /* Under the list: what Enter saves when there is no box, and what has been rejected. */
  function summarise(boxEditor) {
    const w = boxEditor.state;
    const parts = [];
    if (w && !w.boxes.length) parts.push("No boxes: Enter saves “nothing here”.");
    if (w && w.rejected.length) {
      parts.push(`${w.rejected.length} suggested box${w.rejected.length === 1 ? "" : "es"} rejected.`);
    }
    $("box-summary").textContent = parts.join(" ");
  }

  /* ------------------------------------------------------------------ editing */

  function acceptSelected() {
    if (!editor.acceptSelected()) {
      setStatus("Select a suggested box (click it, or Tab) to accept it; Enter accepts all you leave.", "warn");
    }
  }

  function deleteSelected() {
    if (!editor.deleteSelected()) setStatus("Select a box (click it, or Tab) to delete it.", "warn");
  }

  /* ------------------------------------------------------------------ saving */

  /* Enter (nothing = false) or N (nothing = true: every suggestion rejected, no boxes). */
  function submit(nothing) {
    if (!queue.current || editor.busy) return;
    const { item, shownAt } = queue.current;
    const w = item.work;
    if (nothing) editor.rejectAll();
    editor.acceptAll(); // suggestions left as they were: accepted
    const body = {
      boxes: editor.answer(),
      client_token: Api.newToken(),
      duration_ms: Math.max(1, Math.round(performance.now() - shownAt)),
    };
    const kept = w.boxes.length;
    const what = kept ? `${kept} box${kept === 1 ? "" : "es"}` : "“nothing here”";
    pending += 1;
    queue.advance((_, query) =>
      postRetried(`/items/${item.id}/annotations/${query}`, body)
        .then((response) => {
          setStatus(`Saved ${what} for ${item.filename}.`);
          bumpCounts();
          return response;
        })
        .catch((error) => setStatus(`The boxes of ${item.filename} were NOT saved: ${error.message}`, "error"))
        .finally(() => (pending -= 1))
    );
  }

  function skip() {
    if (!queue.current) return;
    queue.advance((item, query) =>
      postRetried(`/items/${item.id}/skip/${query}`, {}).catch((e) => setStatus(`Skip failed: ${e.message}`, "error"))
    );
  }

  /* The undone item comes back on screen with the boxes this page saved for it (the server's item
     has none once its answer is undone), out of the history and the queue. */
  function undoItem(item) {
    const onScreen = queue.current ? [queue.current.item] : [];
    const known = queue.history.concat(onScreen, queue.forward, queue.upcoming).find((i) => i.id === item.id);
    item.work = known && known.work ? known.work : null;
    const other = (i) => i.id !== item.id;
    queue.history = queue.history.filter(other);
    queue.upcoming = queue.upcoming.filter(other);
    queue.forward = queue.forward.filter(other);
    if (queue.current && queue.current.item.id !== item.id) queue.forward.push(queue.current.item);
    queue.show(Stage.preload(item), false);
    if (item.work) $("prelabel").textContent = "Your undone boxes are back: change them and press Enter to save again.";
  }

  function undo() {
    postRetried(`/projects/${config.project}/undo/`, { client_token: Api.newToken() })
      .then((item) => {
        if (!item) {
          setStatus("Nothing to undo.", "warn");
          return;
        }
        undoItem(item);
        setStatus(`Undid the boxes of ${item.filename}.`);
        bumpCounts();
      })
      .catch((e) => setStatus(`Undo failed: ${e.message}`, "error"));
  }

  /* ------------------------------------------------------------------ the figures */

  const REFRESH_MS = 5000;
  let countsTimer = null;
  function bumpCounts() {
    if (countsTimer) return;
    countsTimer = setTimeout(refreshCounts, 400);
  }

  async function refreshCounts() {
    countsTimer = null;
    try {
      const project = await request("GET", `/projects/${config.project}/`);
      $("count-labeled").textContent = project.counts.labeled;
      $("count-unlabeled").textContent = project.counts.unlabeled;
      const mv = project.model_version;
      $("model-info").textContent = mv ? `Model v${mv.number}` : "No model yet";
      const retrain = project.retrain || {};
      const n = retrain.labels_until_next;
      $("retrain-info").textContent = retrain.training
        ? "Training a new model…"
        : typeof n === "number"
          ? `Next model in ${n} label${n === 1 ? "" : "s"}`
          : "";
    } catch (error) {
      /* counts are informative only */
    }
  }

  /* ------------------------------------------------------------------ wiring */

  const keymap = new Keymap(document.querySelector(".label-layout"));
  keymap
    .on("class", (el) => editor.setClass(el.dataset.label))
    .on("save", () => submit(false))
    .on("nothing", () => submit(true))
    .on("accept-box", acceptSelected)
    .on("delete-box", deleteSelected)
    .on("skip", skip)
    .on("back", queue.back)
    .on("undo", undo);
  if (config.keys && config.keys.reject) keymap.bindKey(config.keys.reject, "delete-box");
  stage.bindZoom(keymap);
  keymap.bindElements();
  const reject = config.keys && config.keys.reject;
  const rejectHelp = "As Delete: delete the selected box (a suggested one is rejected)";
  const help = Stage.bindHelp(keymap, editor.helpRows(reject ? [{ key: reject.toUpperCase(), help: rejectHelp }] : []));
  // Escape closes the help; with the help closed, it unselects the selected box.
  keymap.on("close-help", () => ($("help").hidden ? editor.select(-1) : help.close()));
  // A control clicked with the mouse gives the focus back, so that Tab goes through the boxes again.
  document.querySelector(".label-layout").addEventListener("click", (event) => {
    const control = event.target.closest("button");
    if (control && event.detail > 0 && !control.closest("[role=dialog]")) control.blur();
  });

  Stage.bindLifecycle({ queue, project: config.project, refreshCounts, refreshMs: REFRESH_MS, pending: () => pending });
})();
