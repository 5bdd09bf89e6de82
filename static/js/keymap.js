/* A keymap of named actions: elements with data-action (and data-hotkey) are the buttons;
   keys call the same handlers as clicks. Renders <kbd> hints. A few keys have no button of their
   own (Escape closes the help): bindKey names their action. Ignores keys typed in fields. */
(function (global) {
  "use strict";

  const KEY_NAMES = { Enter: "⏎ Enter", Backspace: "⌫ Backspace", " ": "Space", Escape: "Esc" };

  function isTyping(target) {
    if (!target) return false;
    const tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  function normalise(key) {
    return key.length === 1 ? key.toLowerCase() : key;
  }

  class Keymap {
    constructor(root) {
      this.root = root || document;
      this.handlers = {};
      this.keys = {};
      this.bare = {}; // key -> action, for keys without a button
      document.addEventListener("keydown", (event) => this.onKey(event));
      this.root.addEventListener("click", (event) => {
        const el = event.target.closest("[data-action]");
        if (el && this.root.contains(el)) this.run(el.dataset.action, el, event);
      });
    }

    on(action, handler) {
      this.handlers[action] = handler;
      return this;
    }

    /* Bind every [data-hotkey] element and render its key as a <kbd> hint. */
    bindElements() {
      this.root.querySelectorAll("[data-action][data-hotkey]").forEach((el) => {
        const key = normalise(el.dataset.hotkey);
        this.keys[key] = el;
        if (!el.querySelector("kbd")) {
          const kbd = document.createElement("kbd");
          kbd.textContent = KEY_NAMES[el.dataset.hotkey] || el.dataset.hotkey;
          el.prepend(kbd);
        }
      });
      return this;
    }

    /* A key with no button of its own runs ``action``; the help overlay does not list it. */
    bindKey(key, action) {
      this.bare[normalise(key)] = action;
      return this;
    }

    /* [{key, help}] for every bound key, in page order: the help overlay's rows. */
    describe() {
      return Object.entries(this.keys).map(([key, el]) => ({
        key: KEY_NAMES[el.dataset.hotkey] || el.dataset.hotkey,
        help: el.dataset.help || el.textContent.trim(),
      }));
    }

    run(action, el, event) {
      const handler = this.handlers[action];
      if (handler) handler(el, event);
    }

    onKey(event) {
      if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
      const key = normalise(event.key);
      const el = this.keys[key];
      if (!el && this.bare[key]) {
        event.preventDefault();
        this.run(this.bare[key], null, event);
        return;
      }
      if (!el || el.disabled) return;
      event.preventDefault();
      el.classList.add("pressed");
      setTimeout(() => el.classList.remove("pressed"), 120);
      this.run(el.dataset.action, el, event);
    }
  }

  global.Keymap = Keymap;
})(window);
