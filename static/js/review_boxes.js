/* The box review page (review_boxes.html): the flagged images of a box project, worst first, each
   large in viewer.js's ImageViewer with the item's boxes (its current answer, solid, editable with
   box_editor.js's BoxEditor as on the labeling page) and each person's boxes as a read-only dashed
   layer of its own, listed beside the image with their number, and, after a scan, the boxes its
   out-of-fold detector suggests as one more (dotted, orange) layer listed after the people: those
   showing a likely error tagged with it (wrong class, badly placed, unboxed), the errors also named
   under the verdict; its digit takes them into the editor too. A manager decides, keyboard first:
   K keeps the answer; a digit takes that person's boxes into the editor (the same digit again: back
   to the item's), Enter saves the boxes shown as the answer (a change, or a keep when they are the
   item's), the class keys, Delete and the arrows edit them first; N saves "nothing here"; the
   ambiguous key (A) marks the image ambiguous; S skips to the next flagged image, Backspace goes
   back to change a decision. The prefetch queue, the history, the image stage and the help dialog
   are stage.js's. */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("review-config").textContent);
  const $ = (id) => document.getElementById(id);
  const { request } = Api;
  const setStatus = Stage.status;
  const keys = config.keys || {};
  const personKeys = config.person_keys || [];
  const REASONS = {
    label_issue: "likely box error",
    disagreement: "annotators disagreed",
    manual: "sent by a manager",
  };
  const DECIDED = { keep: "kept", change: "changed", ambiguous: "marked ambiguous" };
  // Each person's layer: a colour that reads on photos and apart from the classes' (the answer's), and a dash.
  const PEOPLE = ["#ffffff", "#ff3df5", "#39ff14", "#00e5ff", "#ffe14d", "#ff6b6b", "#b388ff", "#ffa94d", "#63e6be"];
  const DASHES = ["8 4", "3 3", "12 4 3 4", "6 6"];
  // The scan's suggested boxes: a colour of their own and a dotted line; the tag names the likely error.
  const SUGGESTED = { color: "#ff8c1a", dash: "2 3" };
  const ISSUES = { wrong_class: "wrong class?", badly_placed: "badly placed?", unboxed: "unboxed?" };
  const ISSUE_TEXT = {
    wrong_class: (label) => `a box likely of the wrong class (the scan sees “${label}”)`,
    badly_placed: (label) => `a “${label}” box likely badly placed`,
    unboxed: (label) => `a “${label}” likely left unboxed`,
  };
  const SVG = "http://www.w3.org/2000/svg";
  const WORDS = { box: "boxes", person: "people" };
  const plural = (n, word) => `${n} ${n === 1 ? word : WORDS[word] || `${word}s`}`;
  const percent = (v) => `${Math.round(v * 100)}%`;
  let scannedAt = null;

  const stage = Stage.createStage();
  const editor = new BoxEditor(stage.viewer, {
    classes: config.classes,
    buttons: Array.from(document.querySelectorAll(".class-button")),
    list: $("box-list"),
    words: { accepted: "unchanged", drawn: "new" },
    onChange: describe,
  });
  const queue = Stage.createQueue({
    ahead: 2,
    next: (held) => request("GET", `/projects/${config.project}/review/next/?exclude=${held.join(",")}`),
    stage,
    onShow: paint,
    onEmpty: () => {
      ["reason", "agreement"].forEach((id) => ($(id).textContent = "–"));
      ["score", "people-n", "issues"].forEach((id) => ($(id).textContent = ""));
      $("people").replaceChildren();
      editor.setLayers([]);
      editor.clear();
    },
    holdHistory: true, // a decided (or skipped) image stays out of the queue until the page is left
    maxHeld: 100,
  });

  /* ------------------------------------------------------------------ the image on screen */

  /* Each active annotation as a person: a name, their boxes, their layer's style; then the scan's
     suggested boxes, listed and taken as a person's are. */
  function peopleOf(item) {
    const people = (item.annotations || []).map((a, i) => {
      const who = a.user || (a.source === "import" ? "imported" : "someone");
      return {
        name: a.source === "review" ? `${who} (review)` : who,
        boxes: a.boxes || [],
        color: PEOPLE[i % PEOPLE.length],
        dash: DASHES[i % DASHES.length],
        key: personKeys[i] || "",
        shown: true,
      };
    });
    const suggested = item.suggested_boxes || [];
    if (suggested.length) {
      people.push({
        name: "the scan",
        boxes: suggested.map(({ label, x, y, w, h }) => ({ label, x, y, w, h })),
        issues: suggested.map((b) => b.issue),
        ...SUGGESTED,
        key: personKeys[people.length] || "",
        shown: true,
      });
    }
    return people;
  }

  /* The scan's layer as the editor draws it: one layer per likely error, its name the tag. */
  function suggestionLayers(person) {
    const groups = new Map();
    person.boxes.forEach((box, i) => {
      const name = ISSUES[person.issues[i]] || "suggested";
      if (!groups.has(name)) groups.set(name, []);
      groups.get(name).push(box);
    });
    return Array.from(groups, ([name, boxes]) => ({ ...person, name, boxes }));
  }

  /* The people's layers as the editor draws them: the person taken into the editor is drawn there. */
  function layersOf(view) {
    return view.people.flatMap((p, i) => {
      const layer = { ...p, shown: p.shown && i !== view.taken };
      return p.issues ? suggestionLayers(layer) : [layer];
    });
  }

  /* Under the verdict: the likely box errors the scan names, worst first. */
  function describeIssues(item) {
    const named = (item.suggested_boxes || []).filter((b) => b.issue);
    $("issues").textContent = named.length
      ? `The scan: ${named.map((b) => ISSUE_TEXT[b.issue](b.label)).join("; ")}.`
      : "";
  }

  /* Put ``boxes`` (the item's, or a person's) into the editor, as the boxes given. */
  function edit(item, boxes) {
    editor.load(boxes || [], { width: item.width, height: item.height, origin: true });
  }

  function paint(item) {
    const view = { people: peopleOf(item), taken: -1 };
    queue.current.view = view;
    editor.setLayers(layersOf(view));
    edit(item, item.boxes);
    const decided = item.action ? ` · ${DECIDED[item.action] || item.action}` : "";
    $("reason").textContent = `${REASONS[item.reason] || "reviewed"}${item.status === "flagged" ? "" : decided}`;
    $("score").textContent =
      item.reason === "label_issue" && item.score != null ? `(label quality ${percent(item.score)})` : "";
    $("agreement").textContent = item.agreement == null ? "–" : percent(item.agreement);
    const n = item.n_annotations || view.people.filter((p) => !p.issues).length;
    $("people-n").textContent = n > 1 ? `between ${plural(n, "person")}` : n === 1 ? "(one person)" : "";
    describeIssues(item);
    renderPeople();
  }

  /* The list of the people: key, style, name, number of boxes; taken or not, shown or not. */
  function renderPeople() {
    const list = $("people");
    list.replaceChildren();
    if (!queue.current) return;
    const { view } = queue.current;
    if (!view.people.length) {
      const li = document.createElement("li");
      li.className = "people-none muted";
      li.textContent = "No one's boxes on this image.";
      list.append(li);
      return;
    }
    view.people.forEach((person, i) => {
      const li = document.createElement("li");
      li.className = "person";
      li.dataset.person = i;
      li.dataset.name = person.name;
      li.classList.toggle("taken", i === view.taken);
      li.classList.toggle("layer-hidden", !person.shown);
      li.style.setProperty("--layer-color", person.color);

      const take = document.createElement("button");
      take.type = "button";
      take.className = "person-take";
      take.setAttribute("aria-pressed", String(i === view.taken));
      take.title = i === view.taken ? "Back to the item's boxes" : `Take ${person.name}'s boxes into the editor`;
      const kbd = document.createElement("kbd");
      kbd.textContent = person.key || "·";
      const swatch = document.createElementNS(SVG, "svg");
      swatch.setAttribute("class", "person-swatch");
      swatch.setAttribute("viewBox", "0 0 28 10");
      swatch.setAttribute("aria-hidden", "true");
      const line = document.createElementNS(SVG, "line");
      Object.entries({ x1: 1, y1: 5, x2: 27, y2: 5, stroke: person.color, "stroke-dasharray": person.dash }).forEach(
        ([name, value]) => line.setAttribute(name, value)
      );
      swatch.append(line);
      const name = document.createElement("span");
      name.className = "person-name";
      name.textContent = person.name;
      const count = document.createElement("span");
      count.className = "person-count";
      const n = plural(person.boxes.length, "box");
      count.textContent = i === view.taken ? `${n} · in the editor` : n;
      take.append(kbd, swatch, name, count);

      const eye = document.createElement("button");
      eye.type = "button";
      eye.className = "person-eye";
      eye.setAttribute("aria-pressed", String(person.shown));
      eye.setAttribute("aria-label", `${person.shown ? "Hide" : "Show"} ${person.name}'s boxes`);
      eye.textContent = person.shown ? "Hide" : "Show";
      li.append(take, eye);
      list.append(li);
    });
  }

  $("people").addEventListener("click", (event) => {
    const li = event.target.closest("li[data-person]");
    if (!li || !queue.current) return;
    const index = Number(li.dataset.person);
    if (event.target.closest(".person-eye")) {
      const person = queue.current.view.people[index];
      person.shown = !person.shown;
      editor.setLayers(layersOf(queue.current.view));
      renderPeople();
    } else if (event.target.closest(".person-take")) {
      take(index);
    }
  });

  /* A person's boxes into the editor (Enter saves them), or, for the person already taken, the item's back. */
  function take(index) {
    if (!queue.current || editor.busy) return;
    const { item, view } = queue.current;
    const person = view.people[index];
    if (!person) {
      const key = personKeys[index] || index + 1;
      const people = plural(view.people.filter((p) => !p.issues).length, "person");
      setStatus(`No person ${key} on this image: ${people} labeled it.`, "warn");
      return;
    }
    view.taken = view.taken === index ? -1 : index;
    editor.setLayers(layersOf(view));
    if (view.taken < 0) {
      edit(item, item.boxes);
      setStatus("The item's boxes are back in the editor.");
    } else {
      edit(item, person.boxes);
      const again = person.key ? ` (${person.key} again: back to the item's)` : "";
      const n = plural(person.boxes.length, "box");
      setStatus(`${person.name}'s ${n} in the editor: Enter saves them as the answer${again}.`);
    }
    renderPeople();
  }

  /* Under the verdict: what Enter saves now. (Also called while the editor is being built.) */
  function describe(boxEditor) {
    const line = $("editing");
    const current = boxEditor.state && queue ? queue.current : null;
    if (!current) {
      line.textContent = "";
      $("box-summary").textContent = "";
      return;
    }
    const { item, view } = current;
    const boxes = boxEditor.boxes();
    const person = view && view.taken >= 0 ? view.people[view.taken] : null;
    line.classList.toggle("edited", !BoxEditor.same(boxes, item.boxes));
    if (BoxEditor.same(boxes, item.boxes)) {
      line.textContent = `The item's ${plural(boxes.length, "box")}: Enter keeps them.`;
    } else if (person && BoxEditor.same(boxes, person.boxes)) {
      line.textContent = `${person.name}'s ${plural(boxes.length, "box")}: Enter saves them as the answer.`;
    } else {
      line.textContent = `Edited: Enter saves these ${plural(boxes.length, "box")} as the answer.`;
    }
    $("box-summary").textContent = boxes.length ? "" : "No boxes: Enter saves “nothing here”.";
  }

  /* ------------------------------------------------------------------ decisions */

  /* Post the decision on the image on screen and show the next one at once. */
  function decide(body, changed) {
    if (!queue.current || editor.busy) return;
    queue.advance((item) =>
      request("POST", `/items/${item.id}/review/`, body)
        .then((saved) => {
          Object.assign(item, saved);
          const what = saved.action === "change" ? `changed to ${changed}` : DECIDED[saved.action] || saved.action;
          setStatus(`${item.filename}: ${what}.`);
          refreshCounts();
        })
        .catch((error) => setStatus(`The decision on ${item.filename} was NOT saved: ${error.message}`, "error"))
    );
  }

  /* Enter: the boxes shown become the answer (a keep when they are the item's). */
  function save() {
    if (!queue.current || editor.busy) return;
    const { item, view } = queue.current;
    const boxes = editor.boxes();
    if (BoxEditor.same(boxes, item.boxes)) {
      decide({ action: "keep" });
      return;
    }
    const person = view.taken >= 0 ? view.people[view.taken] : null;
    const whose = person && BoxEditor.same(boxes, person.boxes) ? `${person.name}'s ` : "";
    decide({ action: "change", boxes }, boxes.length ? `${whose}${plural(boxes.length, "box")}` : "“nothing here”");
  }

  function nothing() {
    if (!queue.current) return;
    if (!(queue.current.item.boxes || []).length) decide({ action: "keep" });
    else decide({ action: "change", boxes: [] }, "“nothing here”");
  }

  function skip() {
    if (!queue.current || editor.busy) return;
    const { item } = queue.current;
    queue.advance(() => Promise.resolve());
    setStatus(`Skipped ${item.filename}: it stays flagged.`);
  }

  function reset() {
    if (!queue.current || editor.busy) return;
    const { item, view } = queue.current;
    view.taken = -1;
    editor.setLayers(layersOf(view));
    edit(item, item.boxes);
    renderPeople();
    setStatus("The item's boxes as they were.");
  }

  async function refreshCounts() {
    try {
      const counts = await request("GET", `/projects/${config.project}/review/`);
      ["flagged", "reviewed", "changed", "ambiguous"].forEach((name) => {
        $(`count-${name}`).textContent = counts[name];
      });
      if (counts.scanned_at) $("scanned-at").textContent = new Date(counts.scanned_at).toLocaleString();
      if (scannedAt !== null && counts.scanned_at !== scannedAt && queue.exhausted) {
        queue.exhausted = false; // a new scan may have flagged more
        queue.fill();
      }
      scannedAt = counts.scanned_at;
    } catch (error) {
      /* counts are informative only */
    }
  }

  /* ------------------------------------------------------------------ wiring */

  const root = document.querySelector(".review-layout");
  const keymap = new Keymap(root);
  keymap
    .on("class", (el) => editor.setClass(el.dataset.label))
    .on("save", save)
    .on("keep", () => decide({ action: "keep" }))
    .on("ambiguous", () => decide({ action: "ambiguous" }))
    .on("nothing", nothing)
    .on("delete-box", () => {
      if (!editor.deleteSelected()) setStatus("Select a box (click it, or Tab) to delete it.", "warn");
    })
    .on("reset", reset)
    .on("skip", skip)
    .on("back", queue.back)
    .on("person", (el, event) => take(personKeys.indexOf(event.key)))
    .on("scan", () => {
      request("POST", `/projects/${config.project}/review/scan/`)
        .then(() => setStatus("Scan scheduled: new flags appear here when it finishes."))
        .catch((e) => setStatus(`Scan failed: ${e.message}`, "error"));
    });
  personKeys.forEach((key) => keymap.bindKey(key, "person"));
  if (keys.delete) keymap.bindKey(keys.delete, "delete-box");
  stage.bindZoom(keymap);
  keymap.bindElements();
  const digits = personKeys.length ? `${personKeys[0]}–${personKeys[personKeys.length - 1]}` : "";
  const rows = [];
  const takeHelp = "Take that person's boxes into the editor (again: the item's); Enter saves them";
  if (digits) rows.push({ key: digits, help: takeHelp });
  if (keys.delete) rows.push({ key: keys.delete.toUpperCase(), help: "As Delete: delete the selected box" });
  const help = Stage.bindHelp(keymap, editor.helpRows(rows));
  // Escape closes the help; with the help closed, it unselects the selected box.
  keymap.on("close-help", () => ($("help").hidden ? editor.select(-1) : help.close()));
  // A control clicked with the mouse gives the focus back, so that the keys and Tab work at once.
  root.addEventListener("click", (event) => {
    const control = event.target.closest("button");
    if (control && event.detail > 0 && !control.closest("[role=dialog]")) control.blur();
  });

  setInterval(refreshCounts, 10000);
  refreshCounts();
  queue.fill();
})();
