// kurashi web chat: talks to /api/chat; every visible text comes from the server
// (knowledge/messages.yaml through /api/chat/ui, and the core's replies).
(function () {
  "use strict";
  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("text");
  var select = document.getElementById("lang");
  var lang = localStorage.getItem("kurashi.lang") || (navigator.language || "en");
  var busy = false;
  var maxText = 2000;          // from /api/chat/ui; longer input is refused with a note, never cut
  var mode = "chat";           // chat | compose | case: the privacy banner follows it
  var notice = document.getElementById("notice");
  var limit = document.getElementById("limit");
  var sendButton = document.getElementById("send");

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function scroll() { log.scrollTop = log.scrollHeight; }
  // 「かな（漢字）」 (and 漢字（かな）) in answers: the kanji with its reading above, as ruby.
  var KANA = "\u3041-\u309f\u30a0-\u30ff", KANJI = "\u3400-\u4dbf\u4e00-\u9fff\u3005\uf900-\ufaff";
  var READING = new RegExp("([" + KANA + "]+)（([^（）]*[" + KANJI + "][^（）]*)）" +
                           "|([" + KANJI + "][" + KANJI + KANA + "]*)（([" + KANA + "・ 　]+)）", "g");
  function rubify(node, text) {
    // Built from text nodes only (never innerHTML): whatever the server sends stays text.
    var last = 0, m;
    READING.lastIndex = 0;
    while ((m = READING.exec(text)) !== null) {
      if (m.index > last) node.appendChild(document.createTextNode(text.slice(last, m.index)));
      var ruby = el("ruby", "", m[2] || m[3]);
      ruby.appendChild(el("rp", "", "（"));
      ruby.appendChild(el("rt", "", m[1] || m[4]));
      ruby.appendChild(el("rp", "", "）"));
      node.appendChild(ruby);
      last = READING.lastIndex;
    }
    if (last < text.length) node.appendChild(document.createTextNode(text.slice(last)));
  }
  function linkify(node, text) {
    // URLs become links; everything else stays text (no HTML from the server is trusted).
    var parts = text.split(/(https?:\/\/[^\s)）」]+)/);
    parts.forEach(function (part, i) {
      if (i % 2 === 1) {
        var a = el("a", "", part); a.href = part; a.target = "_blank"; a.rel = "noopener";
        node.appendChild(a);
      } else if (part) { rubify(node, part); }
    });
  }
  function showUser(text) { log.appendChild(el("div", "msg user", text)); scroll(); }
  function showReplies(replies, restoring) {
    var firstNew = null;
    replies.forEach(function (r) {
      var bubble = el("div", "msg bot");
      linkify(bubble, r.text || "");
      if (r.card) {
        var card = el("div", "card");
        card.appendChild(el("strong", "", r.card.title));
        card.appendChild(el("div", "", r.card.text));
        bubble.appendChild(card);
      }
      log.appendChild(bubble);
      if (!firstNew) firstNew = bubble;
      var choices = (r.buttons || []).concat(r.quick_replies || []);
      if (choices.length) {
        var chips = el("div", "chips");
        choices.forEach(function (c) {
          var b = el("button", "chip", c.label);
          b.type = "button";
          b.dataset.payload = c.data;
          b.addEventListener("click", function () { chips.classList.add("used"); press(c); });
          chips.appendChild(b);
        });
        log.appendChild(chips);
      }
    });
    if (restoring) { scroll(); return; }
    // A long answer is read from its first line; a short one just scrolls into view.
    if (firstNew && log.scrollHeight - firstNew.offsetTop > log.clientHeight) {
      log.scrollTop = firstNew.offsetTop - log.offsetTop - 8;
    } else { scroll(); }
  }
  function send(body) {
    body.lang = lang;
    busy = true;
    return fetch("/api/chat", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (res) {
      // An error without replies (429 too many requests, 5xx) shows the generic error line.
      return res.json().then(function (data) {
        if (!res.ok && !(data.replies && data.replies.length)) throw new Error(data.error || res.status);
        return data;
      });
    }).then(function (data) { showReplies(data.replies || []); if (data.mode) setMode(data.mode); })
      .catch(function () { showReplies([{ text: labels["event.error"] || "…" }]); })
      .then(function () { busy = false; });
  }
  function press(choice) {
    showUser(choice.label);
    if (choice.data.indexOf("l:") === 0) { setLang(choice.data.slice(2), false); }
    send({ data: choice.data, label: choice.label });
  }
  function setMode(value) {
    // The banner says what fits the moment: no personal details in the chat; describe the
    // problem in your own words when writing to a consultant; replies come here in a case.
    mode = value || "chat";
    var key = mode === "chat" ? "web.notice" : "web.notice_" + mode;
    notice.textContent = labels[key] || labels["web.notice"] || "";
    notice.className = "mode-" + mode;
    notice.dataset.mode = mode;
  }
  function length(text) { return Array.from(text).length; }   // characters, not UTF-16 units
  function checkLength() {
    var count = length(input.value);
    var over = count > maxText;
    if (over) {
      limit.textContent = (labels["web.too_long"] || "{count}/{max}")
        .replace("{max}", String(maxText)).replace("{count}", String(count));
    } else if (count >= maxText * 0.9) {
      limit.textContent = count + " / " + maxText;
    } else { limit.textContent = ""; }
    limit.hidden = !limit.textContent;
    limit.className = over ? "over" : "";
    input.setAttribute("aria-invalid", over ? "true" : "false");
    sendButton.disabled = over;
    return !over;
  }
  function restore(data) {
    // A reload shows the recent conversation again; only the last reply's buttons look fresh
    // (older ones still work, as they do before a reload).
    var turns = data.turns || [];
    if (!turns.length) return false;
    log.appendChild(el("div", "earlier", labels["web.earlier"] || ""));
    turns.forEach(function (turn) {
      if (turn.role === "user") { showUser(turn.text || ""); }
      else { showReplies([turn], true); }
    });
    var groups = log.querySelectorAll(".chips");
    for (var i = 0; i < groups.length - 1; i++) groups[i].classList.add("used");
    var last = log.lastElementChild;
    if (last && last.classList.contains("msg") && last.classList.contains("user") && groups.length) {
      groups[groups.length - 1].classList.add("used");
    }
    scroll();
    return true;
  }
  var labels = {};
  function loadUi(code) {
    return fetch("/api/chat/ui?lang=" + encodeURIComponent(code)).then(function (r) { return r.json(); })
      .then(function (ui) {
        labels = ui.labels;
        lang = ui.lang;
        document.documentElement.lang = ui.lang;
        document.title = labels["web.title"];
        document.getElementById("title").textContent = labels["web.title"];
        if (ui.max_text) { maxText = ui.max_text; }
        setMode(mode);
        document.getElementById("lang-label").textContent = labels["web.language"];
        input.placeholder = labels["web.placeholder"];
        document.getElementById("send").setAttribute("aria-label", labels["web.send"]);
        document.getElementById("send").title = labels["web.send"];
        if (!select.options.length) {
          ui.languages.forEach(function (l) {
            var o = el("option", "", l.name); o.value = l.code; select.appendChild(o);
          });
        }
        select.value = ui.lang;
      });
  }
  function setLang(code, tell) {
    localStorage.setItem("kurashi.lang", code);
    loadUi(code);
    if (tell) { send({ data: "l:" + code }); }
  }
  select.addEventListener("change", function () { setLang(select.value, true); });
  input.addEventListener("input", checkLength);
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!checkLength()) { input.focus(); return; }
    if (!text || busy) return;
    input.value = "";
    checkLength();
    showUser(text);
    send({ text: text });
  });
  function poll() {
    fetch("/api/chat/updates", { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (data) {
        if (data.replies && data.replies.length) showReplies(data.replies);
        if (data.mode) setMode(data.mode);
      })
      .catch(function () {});
  }
  loadUi(lang).then(function () {
    return fetch("/api/chat/history", { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .catch(function () { return { turns: [] }; });
  }).then(function (history) {
    setMode(history.mode);
    if (restore(history)) { sessionStorage.setItem("kurashi.started", "1"); return; }
    if (!sessionStorage.getItem("kurashi.started")) {
      sessionStorage.setItem("kurashi.started", "1");
      send({ event: "start" });
    }
  });
  setInterval(poll, 5000);
})();
