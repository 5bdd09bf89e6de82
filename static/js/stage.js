/* What the labeling and the review page share, loaded before either page's own module:
   - status(): the status line under the panel;
   - createStage(): the image stage, which swaps in an item's prefetched (already decoded) image and
     shows it in viewer.js's ImageViewer (zoom, pan, brightness and contrast);
   - createQueue(): the prefetch queue of the next items and the session's history, which
     Backspace walks back through to change an earlier answer;
   - bindLifecycle(): counts refreshed, leases given back on pagehide, the first fill
   - bindHelp(): the keyboard help, a dialog listing the keymap's keys (and the viewer's gestures)
     that takes focus when it opens, keeps it while open and gives it back when it closes (? toggles
     it, Escape closes it);
   - choose(): marks a class button chosen, for the eye (.chosen) and for assistive tech (aria-pressed);
   - clearButtons(): no button chosen or suggested, for when nothing is on screen. */
(function (global) {
  "use strict";

  const $ = (id) => document.getElementById(id);

  function status(text, kind) {
    const el = $("status");
    el.textContent = text || "";
    el.className = "status" + (kind ? " " + kind : "");
  }

  function choose(button, chosen) {
    button.classList.toggle("chosen", chosen);
    button.setAttribute("aria-pressed", String(chosen));
  }

  /* Nothing on screen: no class button chosen, suggested or showing a confidence (none stale). */
  function clearButtons(buttons) {
    buttons.forEach((b) => {
      choose(b, false);
      b.classList.remove("prelabel");
      const conf = b.querySelector(".conf");
      if (conf) conf.textContent = "";
    });
  }

  /* Start loading and decoding an item's image now, so that showing it later costs no network and no decode. */
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

  /* The image in #stage-frame, in viewer.js's ImageViewer (zoom at the pointer, pan, fit, 1:1,
     brightness and contrast from the page's [data-viewer-controls]): each item's image fitted, the
     filters kept. The frame has the class "zoomed" while the image is not at the fit. */
  function createStage() {
    const frame = $("stage-frame");
    let image = $("item-image");
    const viewer = new ImageViewer(frame, image, { controls: document.querySelector("[data-viewer-controls]") });
    viewer.onChange(() => frame.classList.toggle("zoomed", viewer.zoomed));

    /* Swap in the item's prefetched image element; announce it (item-shown) in the frame that paints it. */
    function show(item) {
      const next = item.preloaded || new Image();
      if (!item.preloaded) next.src = item.image_url;
      item.preloaded = null;
      next.id = "item-image";
      next.className = "item-image";
      next.alt = item.filename;
      next.dataset.item = item.id;
      image = next;
      image.hidden = false;
      viewer.show(image);
      const shown = image;
      const announce = () =>
        requestAnimationFrame(() =>
          document.dispatchEvent(
            new CustomEvent("item-shown", { detail: { id: item.id, at: performance.now(), ready: shown.complete } })
          )
        );
      if (image.complete) announce();
      else image.addEventListener("load", announce, { once: true });
    }

    function hide() {
      image.hidden = true;
    }

    /* The zoom actions (+, -, =, * and their buttons) through the keymap. */
    function bindZoom(keymap) {
      viewer.bindKeymap(keymap);
    }

    return { show, hide, bindZoom, viewer };
  }

  /* The items to come, prefetched, and the session's way back.
     options: ahead (how many to keep prefetched), next(heldIds) (the next item, or null when there is
     none), stage, onShow(item, revising) (paints the rest of the page; queue.current is set),
     onEmpty() (clears it), holdHistory (the history's items are held too), maxHeld (the most ids
     sent as held), retryMs (a failed fetch is tried again this much later), recheckMs (with nothing
     left, ask again this often: leases expire, images arrive, a retrain reorders), answerBringsNext
     (an answer's request can bring the next item: advance's send gets the query that asks for it). */
  function createQueue(options) {
    const { ahead, next, stage, onShow, onEmpty, holdHistory = false, maxHeld = Infinity } = options;
    const { answerBringsNext = false } = options;
    const { retryMs = 2000, recheckMs = 5000 } = options;
    const queue = {
      current: null, // {item, revising, shownAt}
      upcoming: [], // prefetched items, images loading or loaded
      history: [], // items done in this session, newest last
      forward: [], // items to come back to after revising an earlier one
      posting: new Set(), // ids of items whose answer is still being sent: still held by this page
      incoming: 0, // answers in flight that asked for the next item (one round trip per label)
      fetching: false,
      exhausted: false,
      fill,
      show,
      showNext,
      advance,
      back,
      giveBack,
      restart,
    };
    let recheck = null; // the timer of the next check while nothing is left

    /* The ids the server must not hand out again: on screen, prefetched, waiting, or being sent. */
    function heldIds() {
      const items = queue.upcoming.concat(queue.forward, holdHistory ? queue.history : []);
      const ids = items.map((i) => i.id).concat(Array.from(queue.posting));
      if (queue.current) ids.push(queue.current.item.id);
      return ids.slice(-maxHeld);
    }

    async function fill() {
      if (queue.fetching || queue.exhausted) return;
      queue.fetching = true;
      try {
        while (queue.upcoming.length + queue.incoming < ahead && !queue.exhausted) {
          const item = await next(heldIds());
          if (!item) {
            queue.exhausted = true;
            break;
          }
          queue.upcoming.push(preload(item));
          if (!queue.current) showNext();
        }
      } catch (error) {
        status(`Could not fetch the next item: ${error.message}`, "error");
        setTimeout(fill, retryMs);
        return;
      } finally {
        queue.fetching = false;
      }
      if (!queue.current) showNext();
    }

    function show(item, revising) {
      queue.current = { item, revising, shownAt: performance.now() };
      $("loading").hidden = true;
      $("empty").hidden = true;
      stage.show(item);
      $("item-name").textContent = item.filename;
      $("revising").hidden = !revising;
      onShow(item, revising);
    }

    function showNext() {
      const item = queue.forward.pop() || queue.upcoming.shift();
      if (!item) {
        queue.current = null;
        stage.hide();
        $("loading").hidden = queue.exhausted && !queue.fetching;
        $("empty").hidden = !queue.exhausted;
        $("item-name").textContent = "";
        onEmpty();
        if (!queue.exhausted) fill();
        else if (recheck === null) {
          recheck = setTimeout(() => {
            recheck = null;
            queue.exhausted = false;
            fill();
          }, recheckMs);
        }
        return;
      }
      show(item, false);
      fill();
    }

    /* An item that came with an answer's response: prefetched, unless the page already holds it. */
    function receive(item) {
      const held = queue.upcoming.concat(queue.forward, queue.current ? [queue.current.item] : []);
      if (held.some((i) => i.id === item.id) || queue.posting.has(item.id)) return;
      queue.upcoming.push(preload(item));
      if (!queue.current) showNext();
    }

    /* Move on from the current item: it joins the history and stays held while send(item, query),
       the request that records the answer, is in flight; the next item shows at once. With
       answerBringsNext, while the prefetch queue is short, ``query`` asks the same request for the
       next item (``?next=1&exclude=`` the held ids; "" otherwise) and what send resolves to (the
       response, null for 204: nothing left) refills the queue, so a label costs one round trip. */
    function advance(send) {
      if (!queue.current) return;
      const { item } = queue.current;
      const after = queue.upcoming.length - (queue.forward.length ? 0 : 1); // prefetched once the next shows
      const ask = answerBringsNext && !queue.exhausted && after + queue.incoming < ahead;
      const query = ask ? `?next=1&exclude=${heldIds().join(",")}` : "";
      queue.history.push(item);
      queue.posting.add(item.id);
      if (ask) queue.incoming += 1;
      send(item, query)
        .then((response) => {
          if (!ask) return;
          if (response === null) queue.exhausted = true;
          else if (response && response.next) receive(response.next);
        })
        .finally(() => {
          queue.posting.delete(item.id);
          if (!ask) return;
          queue.incoming -= 1;
          if (!queue.current) showNext();
          else fill();
        });
      showNext();
    }

    /* The page is going away: the ids of the items it holds but has not answered (on screen,
       prefetched, waiting), to give back at once. Answers still being sent keep theirs. */
    function giveBack() {
      const items = queue.upcoming.concat(queue.forward, queue.current ? [queue.current.item] : []);
      return items.map((i) => i.id).filter((id) => !queue.posting.has(id));
    }

    /* The page came back (from the browser's back-forward cache) after giving its items back: start over. */
    function restart() {
      queue.upcoming = [];
      queue.forward = [];
      queue.current = null;
      queue.exhausted = false;
      fill();
    }

    /* Backspace: the previous item of the session, to change its answer; the current one waits. */
    function back() {
      const previous = queue.history.pop();
      if (!previous) {
        status("No earlier item in this session.", "warn");
        return;
      }
      if (queue.current) queue.forward.push(queue.current.item);
      show(previous, true);
    }

    return queue;
  }

  /* The help dialog (#help): its table lists the keymap's keys, and a second one (#help-more-keys)
     the keys and gestures without a button of their own, ``more`` ([{key, help}], e.g. the viewer's). */
  function bindHelp(keymap, more = []) {
    const dialog = $("help");
    let returnTo = null;

    const fillTable = (table, rows) => {
      table.innerHTML = "";
      rows.forEach(({ key, help }) => {
        const row = table.insertRow();
        const kbd = document.createElement("kbd");
        kbd.textContent = key;
        row.insertCell().append(kbd);
        row.insertCell().textContent = help;
      });
    };
    const table = $("help-keys");
    fillTable(table, keymap.describe());
    if (more.length) {
      let extra = $("help-more-keys");
      if (!extra) {
        extra = document.createElement("table");
        extra.id = "help-more-keys";
        extra.className = "help-more-keys";
        table.after(extra);
      }
      fillTable(extra, more);
    }

    function open() {
      returnTo = document.activeElement;
      dialog.hidden = false;
      dialog.focus();
    }

    function close() {
      if (dialog.hidden) return;
      dialog.hidden = true;
      if (returnTo && returnTo !== document.body && returnTo.isConnected) returnTo.focus();
      returnTo = null;
    }

    /* Tab and Shift+Tab go round the dialog's own focusable elements (the dialog itself when it has none). */
    function trap(event) {
      if (event.key !== "Tab" || dialog.hidden) return;
      const inside = [dialog, ...dialog.querySelectorAll("a[href], button, input, select, textarea, [tabindex='0']")];
      const at = inside.indexOf(document.activeElement);
      event.preventDefault();
      const step = event.shiftKey ? -1 : 1;
      inside[(at + step + inside.length) % inside.length].focus();
    }

    keymap.on("help", () => (dialog.hidden ? open() : close())).on("close-help", close).bindKey("Escape", "close-help");
    dialog.addEventListener("keydown", trap);
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) close();
    });
    document.addEventListener("focusin", (event) => {
      if (!dialog.hidden && !dialog.contains(event.target)) dialog.focus();
    });
    return { open, close };
  }

  /* The labeling pages' lifecycle: the counts refreshed every ``refreshMs`` while visible (and on
     coming back), a warning before leaving with answers still being sent (``pending()`` > 0),
     the prefetched items given back on pagehide (a beacon to the release endpoint), the queue
     restarted when the page comes back from the back-forward cache, and the first fill. */
  function bindLifecycle({ queue, project, refreshCounts, refreshMs, pending }) {
    setInterval(() => {
      if (!document.hidden) refreshCounts();
    }, refreshMs);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refreshCounts();
    });
    refreshCounts();
    window.addEventListener("beforeunload", (event) => {
      if (pending() > 0) event.preventDefault();
    });
    // Closing the tab (or leaving the page) gives its prefetched items back to the queue at once,
    // instead of after the lease time; coming back from the back-forward cache starts over.
    window.addEventListener("pagehide", () => {
      const ids = queue.giveBack();
      if (ids.length) Api.beacon(`/projects/${project}/release/`, { ids });
    });
    window.addEventListener("pageshow", (event) => {
      if (event.persisted) queue.restart();
    });
    queue.fill();
  }

  global.Stage = { status, choose, clearButtons, preload, createStage, createQueue, bindHelp, bindLifecycle };
})(window);
