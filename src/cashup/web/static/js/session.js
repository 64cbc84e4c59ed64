// Who is signed in: the bearer token, user and role, held in sessionStorage (this tab only, never a URL).

const KEY = "cashup.session";
const listeners = new Set();

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY)) || null;
  } catch {
    return null;
  }
}

export const session = {
  get current() { return load(); },
  get token() { return load()?.token || null; },
  get role() { return load()?.role || null; },
  get userId() { return load()?.user_id || null; },

  /** Keep a verified session: {token, user_id, role}. */
  keep(value) {
    sessionStorage.setItem(KEY, JSON.stringify({ token: value.token, user_id: value.user_id, role: value.role }));
    listeners.forEach((listener) => listener(null));
  },

  end(reason = null) {
    sessionStorage.removeItem(KEY);
    listeners.forEach((listener) => listener(reason));
  },

  /** The service refused the token: sign out and say why. */
  expired(reason) {
    if (load()) this.end(reason);
  },

  onChange(listener) { listeners.add(listener); },
};

export const canTrade = (role) => ["trader", "strategy", "admin"].includes(role);
export const canSeeRisk = (role) => ["risk", "admin"].includes(role);
export const canOperate = (role) => role === "admin";
