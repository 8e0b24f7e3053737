// The class picker of both pages: a search box over the model's classes (a thousand for the
// ImageNet models, ten or twelve for the small ones), a list of the matches under it, and a
// random pick. The ARIA combobox pattern: focus stays in the box, the arrows move the active
// option (aria-activedescendant), Enter or a click picks, Escape closes. A pick is written to
// the URL (?class=N, the other parameters kept), so that a reload or a link opens the same class.
//
// For the tests: the box is #class-search (its data-class is the class picked), the list
// #class-list (options with data-class="i"), the random button #class-random.

/** Options drawn at a time: drawing a thousand on every key would be slow, and nobody reads them. */
const SHOWN = 50;

/** Build the picker in `root` (an empty element). `onPick(i)`: the user picked class `i`.
 * Returns {setClasses(names), value (get/set, no onPick), pick(i) (as the user would)}. */
export function classPicker(root, { onPick = () => {} } = {}) {
  const ui = build(root);
  let names = [];
  let lower = []; // the names in lower case, for matching
  let value = 0;
  let matches = []; // the classes that match what was typed, best first
  let active = -1; // index into the options drawn of the active one, -1 for none

  // "NNN name": numbers padded to the widest, so that a long list lines up.
  const numberOf = (i) => String(i).padStart(String(Math.max(0, names.length - 1)).length, "0");
  const nameOf = (i) => (i < names.length ? names[i] : "(not a class of this model)");
  const label = (i) => (names.length ? `${numberOf(i)} ${nameOf(i)}` : ""); // "": no model yet
  const isOpen = () => !ui.popup.hidden;

  function showValue() {
    ui.input.value = label(value);
    ui.input.placeholder = label(value) || "type a name or number";
    ui.input.dataset.class = String(value);
  }

  /** List the classes that match `query` (all for an empty one); the picked one is active. */
  function list(query) {
    matches = search(query, lower);
    ui.list.replaceChildren(...matches.slice(0, SHOWN).map(option));
    const extra = matches.length - SHOWN;
    ui.more.hidden = names.length === 0 || (matches.length > 0 && extra <= 0);
    ui.more.textContent = matches.length ? `${extra} more match: type to narrow the list` : "no class matches";
    active = -1;
    setActive(query.trim() ? -1 : matches.slice(0, SHOWN).indexOf(value));
  }

  function option(i) {
    const li = document.createElement("li");
    Object.assign(li, { id: `class-option-${i}`, className: i === value ? "picked" : "" });
    li.dataset.class = String(i);
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", "false");
    const span = (className, textContent) => Object.assign(document.createElement("span"), { className, textContent });
    li.append(span("num", numberOf(i)), span("name", nameOf(i)));
    return li;
  }

  function open(query) {
    list(query);
    ui.popup.hidden = false;
    ui.input.setAttribute("aria-expanded", "true");
  }

  function close() {
    ui.popup.hidden = true;
    ui.input.setAttribute("aria-expanded", "false");
    setActive(-1);
    showValue();
    // Still in the box (a pick by key or click): the next key types a new search.
    if (document.activeElement === ui.input) ui.input.select();
  }

  /** Make the `k`th option drawn the active one (-1: none), scrolled into view. */
  function setActive(k) {
    const old = ui.list.children[active];
    if (old) {
      old.classList.remove("active");
      old.setAttribute("aria-selected", "false");
    }
    active = k;
    const now = ui.list.children[k];
    if (!now) return ui.input.removeAttribute("aria-activedescendant");
    now.classList.add("active");
    now.setAttribute("aria-selected", "true");
    ui.input.setAttribute("aria-activedescendant", now.id);
    now.scrollIntoView({ block: "nearest" });
  }

  function pick(i) {
    value = i;
    close();
    writeUrl(i);
    onPick(i);
  }

  function onKey(e) {
    const drawn = ui.list.children.length;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      const step = e.key === "ArrowDown" ? 1 : -1;
      if (!isOpen()) open("");
      else if (drawn) setActive(Math.min(drawn - 1, Math.max(0, active + step)));
    } else if (e.key === "Enter" && isOpen()) {
      // None active: the best match of what was typed; nothing typed: the class stays.
      if (active >= 0) pick(matches[active]);
      else if (ui.input.value.trim() && matches.length) pick(matches[0]);
      else close();
    } else if (e.key === "Escape" && isOpen()) {
      close();
    } else {
      return;
    }
    e.preventDefault();
  }

  // On focus the box empties (the picked class stays as its placeholder), so that typing
  // searches; a click would undo a select() of the text.
  ui.input.addEventListener("focus", () => ((ui.input.value = ""), open("")));
  ui.input.addEventListener("input", () => open(ui.input.value));
  ui.input.addEventListener("keydown", onKey);
  ui.input.addEventListener("blur", close);
  // A press in the list must not take the focus from the box (its blur would close the list).
  ui.popup.addEventListener("mousedown", (e) => e.preventDefault());
  ui.list.addEventListener("click", (e) => {
    const li = e.target.closest("[data-class]");
    if (li) pick(Number(li.dataset.class));
  });
  ui.random.addEventListener("click", () => names.length && pick(Math.floor(Math.random() * names.length)));

  return {
    /** The model's class names, one per class. */
    setClasses(classNames) {
      names = [...classNames];
      lower = names.map((n) => n.toLowerCase());
      list(isOpen() ? ui.input.value : "");
      if (!isOpen()) showValue();
    },
    get value() {
      return value;
    },
    set value(i) {
      value = i;
      showValue();
    },
    pick,
  };
}

/** The picker's elements, in `root`. */
function build(root) {
  const el = (tag, props = {}) => Object.assign(document.createElement(tag), props);
  const caption = el("label", { htmlFor: "class-search", textContent: "Class" });
  const input = el("input", {
    id: "class-search", type: "text", autocomplete: "off", spellcheck: false,
    placeholder: "type a name or number", title: "type to search the classes; ↑ ↓ and Enter pick",
  });
  for (const [k, v] of [["role", "combobox"], ["aria-autocomplete", "list"], ["aria-expanded", "false"], ["aria-controls", "class-list"]]) {
    input.setAttribute(k, v);
  }
  const random = el("button", { id: "class-random", type: "button", textContent: "random", title: "a random class" });
  const list = el("ul", { id: "class-list" });
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "classes");
  const more = el("p", { className: "class-more", hidden: true });
  const popup = el("div", { className: "class-popup", hidden: true });
  const row = el("div", { className: "class-row" });
  popup.append(list, more);
  row.append(input, random);
  root.classList.add("class-picker");
  root.replaceChildren(caption, row, popup);
  return { input, random, list, more, popup };
}

/** The classes that match `query`, best first: by number (exact, then leading digits) for a
 * number, else by name (case-insensitive: names that start with it, then a word that does,
 * then any substring), in class order within each. An empty query lists every class. */
export function search(query, lower) {
  const q = query.trim().toLowerCase();
  if (!q) return lower.map((_, i) => i);
  const rank = /^\d+$/.test(q) ? (i) => numberRank(i, q) : (i) => nameRank(lower[i], q);
  return lower
    .map((_, i) => [rank(i), i])
    .filter(([r]) => r >= 0)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .map(([, i]) => i);
}

function numberRank(i, q) {
  if (i === Number(q)) return 0; // "007" is class 7
  return String(i).startsWith(q) ? 1 : -1;
}

/** 0: `name` starts with `q`; 1: one of its words does; 2: it holds `q` elsewhere; -1: not at all. */
function nameRank(name, q) {
  let rank = -1;
  for (let at = name.indexOf(q); at >= 0; at = name.indexOf(q, at + 1)) {
    if (at === 0) return 0;
    const wordStart = !/[\p{L}\p{N}]/u.test(name[at - 1]);
    rank = wordStart ? 1 : rank === -1 ? 2 : rank;
  }
  return rank;
}

/** Record the class in the URL, keeping its other parameters (model, backend, seed...). */
function writeUrl(i) {
  const url = new URL(location.href);
  url.searchParams.set("class", String(i));
  history.replaceState(null, "", url);
}
