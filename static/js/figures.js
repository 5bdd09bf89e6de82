/* Figures shown on several pages, each formatted once. accuracy() is the twin of the server's
   (annotator/templatetags/figures.py); the under-covered warning is drawn only by the scripts. */
(function (global) {
  "use strict";

  const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

  /* "0.78 ± 0.09 (66 labels)" from a version's metrics or a learning-curve point; "0.78" without an
     interval; "–" without an estimate. */
  function accuracy(metrics) {
    const m = metrics || {};
    if (!isNumber(m.val_accuracy)) return "–";
    if (!isNumber(m.val_accuracy_low) || !isNumber(m.val_accuracy_high)) return m.val_accuracy.toFixed(2);
    const text = `${m.val_accuracy.toFixed(2)} ± ${((m.val_accuracy_high - m.val_accuracy_low) / 2).toFixed(2)}`;
    return isNumber(m.val_n) ? `${text} (${m.val_n} label${m.val_n === 1 ? "" : "s"})` : text;
  }

  /* The warning for classes with too few labels ([{name, n}]); "" when there are none. */
  function underCovered(classes) {
    if (!classes || !classes.length) return "";
    const names = classes.map((c) => `${c.name} (${c.n})`).join(", ");
    return `Few labels for: ${names}. The queue searches for them; label them when you see them.`;
  }

  global.Figures = { accuracy, underCovered };
})(window);
