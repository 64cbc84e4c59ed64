// Small DOM helpers: element builder, tables keyed by id that update rows in place, messages in words.

/** Build an element: h("td", {class: "num"}, "1.5"). Text is always set as text, never parsed as HTML. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** A section with a heading, an optional toolbar and a body. */
export function panel(title, { id, tools = [], wide = false } = {}) {
  const body = h("div", { class: "panel-body" });
  const section = h("section", { class: `panel${wide ? " wide" : ""}`, id, "aria-labelledby": `${id}-title` },
    h("header", { class: "panel-head" }, h("h2", { id: `${id}-title` }, title), h("div", { class: "tools" }, tools)),
    body);
  return { section, body };
}

/** Show a message (error or note) inside `container`, replacing the previous one; empty text clears it. */
export function say(container, text, kind = "error") {
  container.textContent = text || "";
  container.className = `message ${text ? kind : ""}`;
  if (kind === "error") container.setAttribute("role", "alert");
  else container.setAttribute("role", "status");
}

/** Local time of an ISO timestamp, to the second. */
export function time(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString([], { hour12: false });
}

export function dateTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : `${date.toLocaleDateString()} ${time(iso)}`;
}

/** A number as the API wrote it (a Decimal string), or a dash; never re-formatted. */
export const amount = (value) => (value === null || value === undefined ? "—" : String(value));

/**
 * A table whose rows are keyed by an id: `update(rows)` changes only the cells whose text changed,
 * moves rows into the given order and removes rows that are gone, so a row never flickers.
 * A column is {label, value: row => text, num?: bool, wrap?: bool, cell?: (row, td, created) => void}; `cell` draws
 * cells that hold controls (it gets `created` true once, when the row is new).
 */
export class KeyedTable {
  constructor(columns, { key = (row) => row.id, empty = "Nothing here yet.", caption, label, rowClass } = {}) {
    this.columns = columns;
    this.key = key;
    this.rowClass = rowClass;
    this.rows = new Map();
    this.tbody = h("tbody");
    this.emptyRow = h("tr", { class: "empty" }, h("td", { colspan: columns.length }, empty));
    const head = h("tr", {}, columns.map((column) => h("th", { scope: "col", class: column.num ? "num" : "" },
      column.label)));
    this.table = h("table", { "aria-label": label || caption || null },
      caption ? h("caption", {}, caption) : null, h("thead", {}, head), this.tbody);
    this.element = h("div", { class: "table-wrap" }, this.table);
    this.tbody.append(this.emptyRow);
  }

  update(rows) {
    const seen = new Set();
    let previous = null;
    for (const row of rows) {
      const id = String(this.key(row));
      seen.add(id);
      let tr = this.rows.get(id);
      const created = !tr;
      if (created) {
        tr = h("tr", { dataset: { id } });
        for (const column of this.columns) {
          tr.append(h("td", { class: column.num ? "num" : column.wrap ? "wrap" : "", "data-label": column.label }));
        }
        this.rows.set(id, tr);
      }
      tr.className = this.rowClass ? this.rowClass(row) || "" : "";
      this.columns.forEach((column, index) => {
        const td = tr.children[index];
        if (column.cell) column.cell(row, td, created);
        else {
          const text = column.value(row) ?? "";
          if (td.textContent !== text) td.textContent = text;
        }
      });
      const expected = previous ? previous.nextSibling : this.tbody.firstChild;
      if (expected !== tr) this.tbody.insertBefore(tr, expected);
      previous = tr;
    }
    for (const [id, tr] of this.rows) {
      if (!seen.has(id)) {
        tr.remove();
        this.rows.delete(id);
      }
    }
    if (rows.length === 0) this.tbody.append(this.emptyRow);
    else this.emptyRow.remove();
  }

  row(id) { return this.rows.get(String(id)); }
}

/** A definition list of label → value pairs, numbers right-aligned; `tiles` draws each pair as a tile. */
export function facts(pairs, { tiles = false } = {}) {
  const pair = ([label, value, num = true]) => [h("dt", {}, label), h("dd", { class: num ? "num" : "" }, value ?? "—")];
  if (tiles) return h("dl", { class: "facts tiles" }, pairs.map((item) => h("div", {}, pair(item))));
  return h("dl", { class: "facts" }, pairs.flatMap(pair));
}
