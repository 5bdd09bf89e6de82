/* The review page: shows flagged items worst first with the given label and the model's, and
   records a manager's decision per key (Enter keeps, a class key changes, the ambiguous key marks
   it ambiguous); Backspace goes back to change an earlier decision. On multi-label projects a
   class key toggles that class in the item's set and Enter saves the set (kept when unchanged). */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("review-config").textContent);
  const AHEAD = 2;
  const $ = (id) => document.getElementById(id);
  const buttons = Array.from(document.querySelectorAll(".class-button"));
  const REASONS = { label_issue: "likely label error", disagreement: "annotators disagreed" };
  let image = $("item-image");
  const MULTI = Boolean(config.multi_label);
  const names = (list) => (list && list.length ? list.join(", ") : "none");

  const state = {
    current: null, // {item, revising}
    queue: [], // prefetched flagged items
    history: [], // items decided in this session, newest last
    forward: [], // items to come back to after revising an earlier one
    posting: new Set(),
    fetching: false,
    exhausted: false,
    scannedAt: null,
  };

  const { request } = Api;

  function setStatus(text, kind) {
    const el = $("status");
    el.textContent = text || "";
    el.className = "status" + (kind ? " " + kind : "");
  }

  function preload(item) {
    const img = new Image();
    img.src = item.image_url;
    item.preloaded = img;
    return item;
  }

  function heldIds() {
    const ids = state.queue.map((i) => i.id).concat(
      state.forward.map((i) => i.id),
      state.history.map((i) => i.id),
      Array.from(state.posting)
    );
    if (state.current) ids.push(state.current.item.id);
    return ids.slice(-100);
  }

  async function fill() {
    if (state.fetching || state.exhausted) return;
    state.fetching = true;
    try {
      while (state.queue.length < AHEAD && !state.exhausted) {
        const item = await request("GET", `/projects/${config.project}/review/next/?exclude=${heldIds().join(",")}`);
        if (!item) state.exhausted = true;
        else state.queue.push(preload(item));
        if (!state.current) showNext();
      }
    } catch (error) {
      setStatus(`Could not fetch the next item: ${error.message}`, "error");
    } finally {
      state.fetching = false;
    }
    if (!state.current) showNext();
  }

  function paintButtons() {
    const { item, selection } = state.current;
    const suggested = MULTI ? new Set(item.suggested_labels || []) : new Set([item.suggested]);
    buttons.forEach((b) => {
      const isSuggested = suggested.has(b.dataset.label);
      b.classList.toggle("chosen", MULTI ? selection.has(b.dataset.label) : b.dataset.label === item.label);
      b.classList.toggle("prelabel", isSuggested);
      b.querySelector(".conf").textContent =
        !MULTI && isSuggested && item.confidence != null ? ` ${Math.round(item.confidence * 100)}%` : "";
    });
  }

  function show(item, revising) {
    state.current = { item, revising, selection: new Set(item.labels || []) };
    $("loading").hidden = true;
    $("empty").hidden = true;
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
    $("item-name").textContent = item.filename;
    $("revising").hidden = !revising;
    $("reason").textContent = REASONS[item.reason] || "reviewed";
    $("given").textContent = MULTI ? names(item.labels) : item.label || "–";
    $("votes").textContent =
      item.votes && item.votes.length > 1 ? `(votes: ${item.votes.map((v) => `${v.label} ×${v.n}`).join(", ")})` : "";
    $("suggested").textContent = MULTI ? names(item.suggested_labels) : item.suggested || "–";
    $("confidence").textContent = item.confidence == null ? "" : `${Math.round(item.confidence * 100)}% confident`;
    paintButtons();
  }

  function showNext() {
    const item = state.forward.pop() || state.queue.shift();
    if (!item) {
      state.current = null;
      image.hidden = true;
      $("loading").hidden = state.exhausted;
      $("empty").hidden = !state.exhausted;
      $("item-name").textContent = "";
      if (!state.exhausted) fill();
      return;
    }
    show(item, false);
    fill();
  }

  function decide(action, label, labels) {
    if (!state.current) return;
    const { item } = state.current;
    const body = { action };
    if (label) body.label = label;
    if (labels) body.labels = labels;
    state.history.push(item);
    state.posting.add(item.id);
    request("POST", `/items/${item.id}/review/`, body)
      .then((saved) => {
        Object.assign(item, saved);
        const now = MULTI ? names(saved.labels) : saved.label;
        const what = { keep: "kept", change: `changed to “${now}”`, ambiguous: "marked ambiguous" };
        setStatus(`${item.filename}: ${what[saved.action] || saved.action}.`);
        refreshCounts();
      })
      .catch((error) => setStatus(`Decision on ${item.filename} was NOT saved: ${error.message}`, "error"))
      .finally(() => state.posting.delete(item.id));
    showNext();
  }

  async function refreshCounts() {
    try {
      const counts = await request("GET", `/projects/${config.project}/review/`);
      ["flagged", "reviewed", "changed", "ambiguous"].forEach((name) => ($(`count-${name}`).textContent = counts[name]));
      if (counts.scanned_at) $("scanned-at").textContent = new Date(counts.scanned_at).toLocaleString();
      if (state.scannedAt !== null && counts.scanned_at !== state.scannedAt && state.exhausted) {
        state.exhausted = false; // a new scan may have flagged more
        fill();
      }
      state.scannedAt = counts.scanned_at;
    } catch (error) {
      /* counts are informative only */
    }
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

  const keymap = new Keymap(document.querySelector(".review-layout"));
  keymap
    .on("keep", () => {
      if (!state.current) return;
      const { item, selection } = state.current;
      const given = new Set(item.labels || []);
      const same = selection.size === given.size && [...selection].every((name) => given.has(name));
      if (!MULTI || same) decide("keep");
      else decide("change", null, [...selection]);
    })
    .on("change", (el) => {
      if (!state.current) return;
      const name = el.dataset.label;
      if (MULTI) {
        const { selection } = state.current;
        if (selection.has(name)) selection.delete(name);
        else selection.add(name);
        paintButtons();
      } else if (name === state.current.item.label) decide("keep");
      else decide("change", name);
    })
    .on("ambiguous", () => decide("ambiguous"))
    .on("back", () => {
      const previous = state.history.pop();
      if (!previous) {
        setStatus("No earlier item in this session.", "warn");
        return;
      }
      if (state.current) state.forward.push(state.current.item);
      show(preload(previous), true);
    })
    .on("scan", () => {
      request("POST", `/projects/${config.project}/review/scan/`)
        .then(() => setStatus("Scan scheduled: new flags appear here when it finishes."))
        .catch((e) => setStatus(`Scan failed: ${e.message}`, "error"));
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

  setInterval(refreshCounts, 10000);
  refreshCounts();
  fill();
})();
