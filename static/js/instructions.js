/* The project's instructions for annotators on the labeling page: a dialog that the Instructions
   button and the ! key open and close, shown by itself on a person's first visit to the project and
   again whenever the instructions change (localStorage remembers the version seen, per project).
   Like the keyboard help (stage.js), it takes focus when it opens, keeps it while open (Tab goes
   round, the keys do not label behind it) and gives it back when it closes (Escape, !, Got it, a
   click beside it). Its button lives in the labeling keymap's root, so the keyboard help lists it. */
(function () {
  "use strict";

  const dialog = document.getElementById("instructions");
  if (!dialog) return; // the project has no instructions
  const storageKey = `instructions-seen:${dialog.dataset.project}`;
  let returnTo = null;

  function seen() {
    try {
      return window.localStorage.getItem(storageKey) === dialog.dataset.version;
    } catch (error) {
      return false; // storage refused: show them, as on a first visit
    }
  }

  function remember() {
    try {
      window.localStorage.setItem(storageKey, dialog.dataset.version);
    } catch (error) {
      /* storage refused: they show again next time */
    }
  }

  /* Another dialog (the keyboard help) is open: it keeps the focus. */
  function otherDialogOpen() {
    return Array.from(document.querySelectorAll("[role=dialog][aria-modal=true]")).some(
      (el) => el !== dialog && !el.hidden,
    );
  }

  function open() {
    if (!dialog.hidden || otherDialogOpen()) return;
    returnTo = document.activeElement;
    dialog.hidden = false;
    dialog.scrollTop = 0;
    dialog.focus();
    remember();
  }

  function close() {
    if (dialog.hidden) return;
    dialog.hidden = true;
    if (returnTo && returnTo !== document.body && returnTo.isConnected) returnTo.focus();
    returnTo = null;
  }

  /* While open, the dialog has the keyboard: Escape and ! close it, Tab goes round its links and
     buttons, Enter and Space work on them; no other key reaches the labeling keymap. */
  function onKey(event) {
    if (dialog.hidden) return;
    event.stopImmediatePropagation();
    if (event.key === "Escape" || event.key === "!") {
      event.preventDefault();
      close();
    } else if (event.key === "Tab") {
      const inside = [dialog, ...dialog.querySelectorAll("a[href], button")];
      const at = inside.indexOf(document.activeElement);
      event.preventDefault();
      inside[(at + (event.shiftKey ? -1 : 1) + inside.length) % inside.length].focus();
    }
  }

  // Capturing on window runs before the keymaps' listeners on document.
  window.addEventListener("keydown", onKey, true);
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) close();
  });
  document.addEventListener("focusin", (event) => {
    if (!dialog.hidden && !dialog.contains(event.target)) dialog.focus();
  });

  new Keymap(document.getElementById("instructions-controls"))
    .on("instructions", () => (dialog.hidden ? open() : close()))
    .on("close-instructions", close)
    .bindElements();

  if (!seen()) open();
})();
