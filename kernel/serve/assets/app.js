// The rater page. Keyboard first: digits pick an answer (or, for a ranking, the next
// candidate), arrows pick left/right, Backspace undoes a ranking step, Enter submits
// (Ctrl+Enter in a text box). Everything from the server is put in with textContent.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const app = $("app");
  const config = JSON.parse(app.dataset.config);
  const token = decodeURIComponent(location.pathname.split("/").pop());
  let current = null; // {item, key, order, candidates}
  let sending = false;

  function newKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  async function call(method, path, body) {
    const res = await fetch(path, {
      method,
      headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = {};
    try { data = await res.json(); } catch (e) { /* an empty or non-JSON body */ }
    return { ok: res.ok, status: res.status, data };
  }

  function say(text) { $("status").textContent = text; }

  function fill(dl, pairs) {
    dl.replaceChildren();
    for (const [name, value] of pairs) {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      dl.append(dt, dd);
    }
  }

  function option(value, text, hotkey) {
    const id = "opt-" + value;
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "answer";
    input.id = id;
    input.value = value;
    const label = document.createElement("label");
    label.htmlFor = id;
    if (hotkey) {
      const k = document.createElement("kbd");
      k.textContent = hotkey;
      label.append(k, " ");
    }
    label.append(text);
    const wrap = document.createElement("div");
    wrap.className = "option";
    wrap.append(input, label);
    $("controls").append(wrap);
  }

  function showOrder() {
    const names = current.order.map((c) => current.candidates.find((x) => x[0] === c)[1]);
    $("order").textContent = names.length ? names.join("  >  ") : "(press the numbers, best first)";
  }

  function controls(a) {
    const box = $("controls");
    box.replaceChildren();
    const q = $("question");
    if (config.kind === "label") {
      q.textContent = "Your answer";
      config.choices.forEach((c, i) => option(c, c, i < 9 ? String(i + 1) : ""));
    } else if (config.kind === "rate") {
      q.textContent = "Your rating (1 = lowest, " + config.scale + " = highest)";
      for (let i = 1; i <= config.scale; i++) option(String(i), String(i), i <= 9 ? String(i) : "");
    } else if (config.kind === "pairwise") {
      q.textContent = "Which is better?";
      option("left", "Left is better", "←");
      option("right", "Right is better", "→");
    } else if (config.kind === "rank") {
      q.textContent = "Put them in order, best first";
      current.candidates = a.candidates;
      current.order = [];
      a.candidates.forEach(([name, text], i) => {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "secondary option";
        b.dataset.candidate = name;
        const k = document.createElement("kbd");
        k.textContent = String(i + 1);
        b.append(k, " ", text);
        b.addEventListener("click", () => pickRank(name));
        box.append(b);
      });
      const p = document.createElement("p");
      p.id = "order";
      box.append(p);
      showOrder();
    } else if (config.kind === "demo") {
      q.textContent = "Your answer";
      const label = document.createElement("label");
      label.htmlFor = "text";
      label.textContent = "Write your answer (Ctrl+Enter submits)";
      const t = document.createElement("textarea");
      t.id = "text";
      t.maxLength = 10000;
      box.append(label, t);
    }
  }

  function pickRank(name) {
    if (!current || current.order.includes(name)) return;
    current.order.push(name);
    showOrder();
  }

  function answer() {
    if (config.kind === "rank") {
      return current.order.length === current.candidates.length ? current.order.slice() : null;
    }
    if (config.kind === "demo") {
      const t = $("text").value;
      return t.trim() ? t : null;
    }
    const checked = document.querySelector('input[name="answer"]:checked');
    if (!checked) return null;
    return config.kind === "rate" ? Number(checked.value) : checked.value;
  }

  function progress(answered, remaining) {
    const total = answered + remaining;
    $("progress").max = Math.max(total, 1);
    $("progress").value = answered;
    $("progress-text").textContent = answered + " done" + (remaining > 0 ? ", about " + remaining + " to go" : "");
  }

  function finish(text) {
    current = null;
    $("item").hidden = true;
    $("message").hidden = false;
    $("message").textContent = text;
  }

  async function load() {
    let r;
    try {
      r = await call("GET", "/api/next");
    } catch (e) {
      say("Cannot reach the server. Retrying…");
      setTimeout(load, 2000);
      return;
    }
    if (!r.ok) return finish(r.data.message || "This link is not valid.");
    const n = r.data;
    if (n.status === "paused") {
      progress(n.answered, 0);
      return finish("Thank you. Your answers on the check items were below the bar this study needs, so no more items will be given to you.");
    }
    if (n.status === "done") {
      progress(n.answered, 0);
      return finish("All done, thank you! There is nothing left for you to judge.");
    }
    if (n.status === "wait") {
      // Items held by other raters may come free: ask again.
      progress(n.answered, 0);
      finish("Nothing for you right now; checking again in a moment…");
      setTimeout(load, 1000 * n.retry_seconds);
      return;
    }
    const a = n.item;
    current = { item: a.item, key: newKey() };
    progress(a.answered, a.remaining + 1);
    fill($("fields"), a.fields);
    const assist = a.assistance.length > 0;
    $("assistance").hidden = !assist;
    if (assist) {
      $("assistance-heading").textContent = a.assistance_heading;
      fill($("assistance-fields"), a.assistance);
    }
    controls(a);
    $("item").hidden = false;
    $("message").hidden = true;
    const first = document.querySelector("#controls input, #controls textarea, #controls button");
    if (first) first.focus();
  }

  async function submit() {
    if (!current || sending) return;
    // A retry sends what the first attempt sent, under the same key: the server may already
    // have saved it (the reply was lost), and then answers that it is a duplicate.
    const value = current.sent !== undefined ? current.sent : answer();
    if (value === null) {
      say(config.kind === "rank" ? "Rank every candidate first." : "Choose an answer first.");
      return;
    }
    current.sent = value;
    sending = true;
    $("submit").disabled = true;
    try {
      // The same key on every retry: the server writes the judgment once.
      for (let attempt = 0; attempt < 5; attempt++) {
        let r;
        try {
          r = await call("POST", "/api/judgments", { item: current.item, answer: value, key: current.key });
        } catch (e) {
          r = null;
        }
        if (r === null || r.status >= 500) {
          // The network or a proxy failed: try again with the same key.
          say("Connection lost; retrying…");
          await new Promise((ok) => setTimeout(ok, 400 * 2 ** attempt));
          continue;
        }
        if (r.ok) {
          say(r.data.paused ? "Saved." : "Saved. Next item.");
          await load();
          return;
        }
        // Anything that means "this item is no longer yours to answer": move on.
        if (["paused", "already_judged", "expired", "key_reused", "not_assigned"].includes(r.data.status)) {
          await load();
          return;
        }
        // An invalid answer: let the rater change it.
        current.sent = undefined;
        say(r.data.reason || r.data.message || "The server refused the answer (" + r.status + ").");
        return;
      }
      say("Could not reach the server; your answer is not saved yet. Press Enter to try again.");
    } finally {
      sending = false;
      $("submit").disabled = false;
    }
  }

  $("answer").addEventListener("submit", (e) => { e.preventDefault(); submit(); });

  document.addEventListener("keydown", (e) => {
    if (!current) return;
    const typing = e.target && e.target.tagName === "TEXTAREA";
    if (e.key === "Enter") {
      if (typing && !(e.ctrlKey || e.metaKey)) return;
      e.preventDefault();
      submit();
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (config.kind === "pairwise" && (e.key === "ArrowLeft" || e.key === "ArrowRight")) {
      e.preventDefault();
      $(e.key === "ArrowLeft" ? "opt-left" : "opt-right").checked = true;
      return;
    }
    if (config.kind === "rank") {
      if (e.key === "Backspace") { e.preventDefault(); current.order.pop(); showOrder(); return; }
      const i = Number(e.key) - 1;
      if (Number.isInteger(i) && i >= 0 && i < current.candidates.length) pickRank(current.candidates[i][0]);
      return;
    }
    if (/^[1-9]$/.test(e.key)) {
      const inputs = document.querySelectorAll('#controls input[name="answer"]');
      const input = inputs[Number(e.key) - 1];
      if (input) { input.checked = true; input.focus(); }
    }
  });

  load();
})();
