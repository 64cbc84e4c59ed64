// The desk's shell: sign-in (a pasted token, or the one-time code of the link `cashup serve` prints),
// the pages a role may open, and the live layer they share.

import { api } from "./api.js";
import { h, say } from "./dom.js";
import { Live } from "./live.js";
import { opsPage } from "./ops.js";
import { riskPage } from "./risk.js";
import { canOperate, canSeeRisk, canTrade, session } from "./session.js";
import { tradePage } from "./trade.js";

const PAGES = {
  trade: { title: "Trading", allowed: (role) => canTrade(role) || role === "viewer", render: tradePage },
  risk: { title: "Risk", allowed: canSeeRisk, render: riskPage },
  ops: { title: "Operations", allowed: canOperate, render: opsPage },
};

const main = document.getElementById("main");
const header = document.querySelector("header.top");
const nav = document.getElementById("nav");
const live = new Live(document.getElementById("live"));
let leave = null;
let signOutReason = null;

document.getElementById("sign-out").addEventListener("click", () => session.end());
session.onChange((reason) => {
  signOutReason = reason;
  route();
});
window.addEventListener("hashchange", () => route());

async function start() {
  const match = /^#sign-in=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (match) {
    // The code is in the fragment (never sent to a server); drop it from the address bar and history at once.
    history.replaceState(null, "", location.pathname);
    try {
      session.keep(await api("POST", "/session", { code: match[1] }, null));
      return;
    } catch (error) {
      signOutReason = error.message;
    }
  }
  route();
}

function pagesFor(role) {
  return Object.entries(PAGES).filter(([, page]) => page.allowed(role));
}

function route() {
  if (leave) leave();
  leave = null;
  main.replaceChildren();
  const current = session.current;
  if (!current) {
    live.stop();
    header.hidden = true;
    document.title = "Sign in · CashUp desk";
    main.append(signInForm());
    return;
  }
  const allowed = pagesFor(current.role);
  const name = location.hash.replace(/^#\/?/, "");
  const chosen = allowed.find(([key]) => key === name) || allowed[0];
  if (!chosen) {
    header.hidden = false;
    main.append(h("p", { class: "message error" }, `The role ${current.role} has no page here.`));
    return;
  }
  if (`#/${chosen[0]}` !== location.hash) history.replaceState(null, "", `#/${chosen[0]}`);
  header.hidden = false;
  document.getElementById("who").textContent = `${current.user_id} · ${current.role}`;
  nav.replaceChildren(...allowed.map(([key, page]) => h("a", {
    href: `#/${key}`, "aria-current": key === chosen[0] ? "page" : null,
  }, page.title)));
  document.title = `${chosen[1].title} · CashUp desk`;
  if (!live.token || live.token !== current.token) live.start(current.token);
  leave = chosen[1].render(main, { live, role: current.role, userId: current.user_id });
}

function signInForm() {
  const token = h("textarea", { id: "token", name: "token", rows: 4, required: true, autocomplete: "off",
    spellcheck: "false", "aria-describedby": "token-help" });
  const message = h("p", { class: "message", id: "sign-in-message" });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "sign-in", id: "sign-in" },
    h("h1", {}, "CashUp desk"),
    h("label", { for: "token" }, "Bearer token"),
    token,
    h("p", { class: "hint", id: "token-help" },
      "Paste a token from the CashUp user service or `cashup token --user <id> --role <role>`. ",
      "It stays in this browser tab only (session storage) and is never put in a URL. ",
      "On the local default, `make run` prints a one-time sign-in link instead."),
    button, message);
  if (signOutReason) say(message, signOutReason);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = token.value.trim().replace(/^Bearer\s+/i, "");
    if (!value) {
      say(message, "Paste a token first.");
      return;
    }
    button.disabled = true;
    try {
      const who = await api("GET", "/session", undefined, value);
      session.keep({ ...who, token: value });
    } catch (error) {
      say(message, `The service refused this token: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  });
  queueMicrotask(() => token.focus());
  return form;
}

start();
