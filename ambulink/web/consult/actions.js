// The clinical actions: "confirm STEMI" and "activate cath lab" (permission `decide`), "advice to
// crew" (`advise`) and notes (`note`). Each is an `action` message on the member socket; the hub
// records it on the timeline and pushes it to every member, the crew included. Buttons are enabled
// only for the permissions the hub gave this member (`joined.you.permissions`); the hub checks
// every message again anyway.

const NEEDS = { confirm_stemi: "decide", activate_cath_lab: "decide", advice: "advise", note: "note" };

export class Actions {
  /**
   * @param {HTMLElement} form  holds buttons with data-action and a text input #action-text
   * @param {(message: object) => void} send
   */
  constructor(form, send) {
    this.form = form;
    this.send = send;
    this.permissions = new Set();
    this.text = form.querySelector("#action-text");
    form.addEventListener("submit", (event) => event.preventDefault());
    for (const button of form.querySelectorAll("button[data-action]")) {
      button.addEventListener("click", () => this.act(button.dataset.action));
    }
    this.setPermissions([]);
  }

  setPermissions(permissions) {
    this.permissions = new Set(permissions);
    for (const button of this.form.querySelectorAll("button[data-action]")) {
      button.disabled = !this.permissions.has(NEEDS[button.dataset.action]);
    }
    this.text.disabled = !(this.permissions.has("advise") || this.permissions.has("note"));
  }

  act(action) {
    const text = this.text.value.trim();
    if ((action === "advice" || action === "note") && !text) {
      this.text.focus();
      this.text.setCustomValidity("write the advice or note first");
      this.text.reportValidity();
      return;
    }
    this.text.setCustomValidity("");
    const defaults = { confirm_stemi: "STEMI confirmed", activate_cath_lab: "Cath lab activated" };
    this.send({ type: "action", action, text: text || defaults[action] });
    if (action === "advice" || action === "note") this.text.value = "";
  }
}
