/* The review page: shows flagged items worst first with the given label and the model's, and
   records a manager's decision per key (Enter keeps, a class key changes, the ambiguous key marks
   it ambiguous); Backspace goes back to change an earlier decision. On multi-label projects a
   class key toggles that class in the item's set and Enter saves the set (kept when unchanged).
   The prefetch queue, the history, the image stage and the help dialog are stage.js's, the image's
   zoom, pan and filters viewer.js's. */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("review-config").textContent);
  const $ = (id) => document.getElementById(id);
  const buttons = Array.from(document.querySelectorAll(".class-button"));
  const REASONS = {
    label_issue: "likely label error",
    disagreement: "annotators disagreed",
    manual: "sent by a manager",
  };
  const MULTI = Boolean(config.multi_label);
  const names = (list) => (list && list.length ? list.join(", ") : "none");
  const { request } = Api;
  const setStatus = Stage.status;
  let scannedAt = null;

  const stage = Stage.createStage();
  const queue = Stage.createQueue({
    ahead: 2,
    next: (held) => request("GET", `/projects/${config.project}/review/next/?exclude=${held.join(",")}`),
    stage,
    onShow: paint,
    onEmpty: () => {
      ["reason", "given", "suggested"].forEach((id) => ($(id).textContent = "–"));
      $("votes").textContent = $("confidence").textContent = "";
      Stage.clearButtons(buttons);
    },
    holdHistory: true, // a decided item stays flagged until its decision lands
    maxHeld: 100,
  });

  function paintButtons() {
    const { item, selection } = queue.current;
    const suggested = MULTI ? new Set(item.suggested_labels || []) : new Set([item.suggested]);
    buttons.forEach((b) => {
      const isSuggested = suggested.has(b.dataset.label);
      Stage.choose(b, MULTI ? selection.has(b.dataset.label) : b.dataset.label === item.label);
      b.classList.toggle("prelabel", isSuggested);
      b.querySelector(".conf").textContent =
        !MULTI && isSuggested && item.confidence != null ? ` ${Math.round(item.confidence * 100)}%` : "";
    });
  }

  /* The verdict panel and the class buttons for the item on screen. */
  function paint(item) {
    queue.current.selection = new Set(item.labels || []);
    $("reason").textContent = REASONS[item.reason] || "reviewed";
    $("given").textContent = MULTI ? names(item.labels) : item.label || "–";
    $("votes").textContent =
      item.votes && item.votes.length > 1 ? `(votes: ${item.votes.map((v) => `${v.label} ×${v.n}`).join(", ")})` : "";
    $("suggested").textContent = MULTI ? names(item.suggested_labels) : item.suggested || "–";
    $("confidence").textContent = item.confidence == null ? "" : `${Math.round(item.confidence * 100)}% confident`;
    paintButtons();
  }

  function decide(action, label, labels) {
    const body = { action };
    if (label) body.label = label;
    if (labels) body.labels = labels;
    queue.advance((item) =>
      request("POST", `/items/${item.id}/review/`, body)
        .then((saved) => {
          Object.assign(item, saved);
          const now = MULTI ? names(saved.labels) : saved.label;
          const what = { keep: "kept", change: `changed to “${now}”`, ambiguous: "marked ambiguous" };
          setStatus(`${item.filename}: ${what[saved.action] || saved.action}.`);
          refreshCounts();
        })
        .catch((error) => setStatus(`Decision on ${item.filename} was NOT saved: ${error.message}`, "error"))
    );
  }

  async function refreshCounts() {
    try {
      const counts = await request("GET", `/projects/${config.project}/review/`);
      ["flagged", "reviewed", "changed", "ambiguous"].forEach((name) => ($(`count-${name}`).textContent = counts[name]));
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

  const keymap = new Keymap(document.querySelector(".review-layout"));
  keymap
    .on("keep", () => {
      if (!queue.current) return;
      const { item, selection } = queue.current;
      const given = new Set(item.labels || []);
      const same = selection.size === given.size && [...selection].every((name) => given.has(name));
      if (!MULTI || same) decide("keep");
      else decide("change", null, [...selection]);
    })
    .on("change", (el) => {
      if (!queue.current) return;
      const name = el.dataset.label;
      if (MULTI) {
        const { selection } = queue.current;
        if (selection.has(name)) selection.delete(name);
        else selection.add(name);
        paintButtons();
      } else if (name === queue.current.item.label) decide("keep");
      else decide("change", name);
    })
    .on("ambiguous", () => decide("ambiguous"))
    .on("back", queue.back)
    .on("scan", () => {
      request("POST", `/projects/${config.project}/review/scan/`)
        .then(() => setStatus("Scan scheduled: new flags appear here when it finishes."))
        .catch((e) => setStatus(`Scan failed: ${e.message}`, "error"));
    });
  stage.bindZoom(keymap);
  keymap.bindElements();
  Stage.bindHelp(keymap, stage.viewer.helpRows());

  setInterval(refreshCounts, 10000);
  refreshCounts();
  queue.fill();
})();
