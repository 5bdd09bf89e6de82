/* The members card: as a manager types in "Add user", suggest matching users (by name, username or
   email) from the users API in the input's <datalist>, a short pause after the last key. */
(function () {
  "use strict";

  const form = document.getElementById("member-add-form");
  const input = form && form.querySelector("input[name=username]");
  const list = document.getElementById("member-suggestions");
  if (!input || !list) return;
  const url = form.dataset.suggestUrl;
  let timer = null;
  let asked = "";

  function label(user) {
    const parts = [user.name, user.email].filter(Boolean);
    return parts.length ? parts.join(" · ") : user.username;
  }

  async function suggest(query) {
    asked = query;
    const response = await fetch(`${url}?q=${encodeURIComponent(query)}`, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!response.ok || asked !== query) return;
    const users = await response.json();
    list.replaceChildren(
      ...users.map((user) => {
        const option = document.createElement("option");
        option.value = user.username;
        option.label = label(user);
        option.textContent = label(user);
        return option;
      })
    );
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    const query = input.value.trim();
    if (!query) {
      list.replaceChildren();
      return;
    }
    timer = setTimeout(() => suggest(query).catch(() => {}), 200);
  });
})();
