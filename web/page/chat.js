"use strict";
// The chat page of passerelle. It talks to the relay over a WebSocket on
// the address the page came from. Wire (docs/browser.md): every message is
// one binary frame holding its UTF-8 text and a terminating NUL, both ways.
// Control messages are those of docs/chat.md (<passerelle:nick name="..."/>
// and so on). Everything received is untrusted text: it only ever reaches
// the document through textContent, never as HTML.
(() => {
  const PREFIX = "<passerelle:";
  const MAX_LOG = 500;
  const RETRY_MIN_MS = 500;
  const RETRY_MAX_MS = 30000;
  const WHO_EVERY_MS = 15000;

  const $ = (id) => document.getElementById(id);
  const encoder = new TextEncoder();
  // Bad bytes become U+FFFD. ignoreBOM keeps a leading byte-order mark in
  // the text: dropped, it would let "\uFEFF<passerelle:..." from another
  // client read as a reply of the server (the relay refuses those too).
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

  const params = new URLSearchParams(location.search);
  const state = {
    ws: null,
    retries: 0,
    retryTimer: 0,
    whoTimer: 0,
    nick: "",                       // as the relay confirmed it
    wantNick: params.get("nick") || "",
    wantRoom: params.get("room") || "",
  };
  $("nick").value = state.wantNick;
  $("room").value = state.wantRoom;

  function wsURL() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/";
  }

  // xmlAttr escapes a value for a double- or single-quoted XML attribute.
  function xmlAttr(s) {
    return s.replace(/[&<>"'\t\n\r]/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;",
      "\t": "&#9;", "\n": "&#10;", "\r": "&#13;",
    })[c]);
  }

  function control(name, attrs) {
    let s = PREFIX + name;
    for (const [k, v] of Object.entries(attrs || {})) {
      s += " " + k + '="' + xmlAttr(v) + '"';
    }
    return s + "/>";
  }

  // send writes one message as one binary frame with its NUL.
  function send(text) {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return false;
    }
    ws.send(encoder.encode(text + "\0"));
    return true;
  }

  function setStatus(kind, text) {
    const el = $("status");
    el.dataset.state = kind;
    el.textContent = text;
  }

  function show(kind, who, text) {
    const log = $("log");
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    const li = document.createElement("li");
    li.className = kind;
    if (who) {
      const w = document.createElement("span");
      w.className = "who";
      w.textContent = who;
      li.append(w);
    }
    const t = document.createElement("span");
    t.className = "text";
    t.textContent = text;
    li.append(t);
    log.append(li);
    while (log.childElementCount > MAX_LOG) {
      log.firstElementChild.remove();
    }
    if (atEnd) {
      log.scrollTop = log.scrollHeight;
    }
  }

  function showMembers(room, count, names) {
    $("room-name").textContent = room;
    $("count").textContent = "(" + count + ")";
    const ul = $("members");
    const items = names.map((n) => {
      const li = document.createElement("li");
      li.textContent = n;
      return li;
    });
    const anonymous = count - names.length;
    if (anonymous > 0) {
      const li = document.createElement("li");
      li.className = "anonymous";
      li.textContent = anonymous + " without a nickname";
      items.push(li);
    }
    ul.replaceChildren(...items);
  }

  // parseControl reads a reply such as <passerelle:joined room="x"/> with
  // the browser's XML parser, which neither runs scripts nor loads
  // anything. The prefix is bound to a namespace by a wrapper element.
  function parseControl(text) {
    const doc = new DOMParser().parseFromString(
      '<r xmlns:passerelle="urn:passerelle">' + text + "</r>", "application/xml");
    if (doc.getElementsByTagName("parsererror").length > 0) {
      return null;
    }
    const el = doc.documentElement.firstElementChild;
    if (!el || el.prefix !== "passerelle" || el.nextElementSibling) {
      return null;
    }
    return el;
  }

  function onControl(text) {
    const el = parseControl(text);
    if (!el) {
      return false;
    }
    switch (el.localName) {
      case "joined": {
        const room = el.getAttribute("room") || "";
        $("room-name").textContent = room;
        show("info", "", "You are in room " + room + " (" + (el.getAttribute("members") || "?") + " present).");
        send(control("who"));
        return true;
      }
      case "nick":
        state.nick = el.getAttribute("name") || "";
        show("info", "", "Your nickname is " + state.nick + ".");
        send(control("who"));
        return true;
      case "members": {
        const names = [];
        for (const m of el.children) {
          if (m.localName === "member") {
            names.push(m.getAttribute("name") || "");
          }
        }
        showMembers(el.getAttribute("room") || "", Number(el.getAttribute("count")) || names.length, names);
        return true;
      }
      case "error":
        show("error", "", (el.getAttribute("code") || "error") + ": " + el.textContent);
        if (el.getAttribute("command") === "nick") {
          // The box shows the nickname the relay holds for us (none,
          // or the last one granted), not the refused one, and a
          // reconnection does not ask for the refused one again.
          state.wantNick = state.nick;
          $("nick").value = state.nick;
          $("nick").focus();
        }
        return true;
      case "pong":
        return true;
    }
    return false;
  }

  function onMessage(ev) {
    const text = typeof ev.data === "string" ? ev.data : decoder.decode(ev.data);
    // One message per frame, each with its NUL; be lenient with a frame
    // holding several, or a last one without its NUL.
    const parts = text.split("\0");
    if (parts[parts.length - 1] === "") {
      parts.pop();
    }
    for (const m of parts) {
      if (m.startsWith(PREFIX) && onControl(m)) {
        continue;
      }
      show("msg", "", m);
    }
  }

  function connect() {
    clearTimeout(state.retryTimer);
    const url = wsURL();
    setStatus("connecting", "Connecting to " + url + " …");
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      retry(String(e));
      return;
    }
    ws.binaryType = "arraybuffer";
    state.ws = ws;
    ws.onopen = () => {
      state.retries = 0;
      const how = url.startsWith("wss:") ? " over TLS" : " without TLS (not encrypted)";
      setStatus("open", "Connected to " + url + how);
      if (state.wantNick) {
        send(control("nick", { name: state.wantNick }));
      }
      if (state.wantRoom) {
        send(control("join", { room: state.wantRoom }));
      } else {
        send(control("who"));
      }
      clearInterval(state.whoTimer);
      state.whoTimer = setInterval(() => send(control("who")), WHO_EVERY_MS);
    };
    ws.onmessage = onMessage;
    ws.onclose = (ev) => {
      if (state.ws !== ws) {
        return;
      }
      state.ws = null;
      clearInterval(state.whoTimer);
      let why = "code " + ev.code;
      if (ev.reason) {
        why += ": " + ev.reason;
      }
      retry(why);
    };
  }

  // retry reconnects after an exponential back-off with jitter, so that a
  // restarted server is not hit by every page at the same moment.
  function retry(why) {
    const base = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** state.retries);
    state.retries++;
    const delay = base / 2 + Math.random() * base / 2;
    setStatus("closed", "Disconnected (" + why + "); reconnecting in " + (delay / 1000).toFixed(1) + " s");
    state.retryTimer = setTimeout(connect, delay);
  }

  $("join").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const nick = $("nick").value.trim();
    const room = $("room").value.trim();
    if (nick && nick !== state.nick) {
      send(control("nick", { name: nick }));
    }
    if (room !== state.wantRoom || !room) {
      send(room ? control("join", { room: room }) : control("leave"));
    }
    state.wantNick = nick;
    state.wantRoom = room;
  });

  $("send").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("text");
    // A NUL would end the message early: the relay cuts at NUL.
    const text = input.value.replace(/\0/g, "");
    if (!text) {
      return;
    }
    if (send(text)) {
      show("mine", state.nick || "me", text);
      input.value = "";
    } else {
      show("error", "", "Not connected: the message was not sent.");
    }
  });

  $("who").addEventListener("click", () => send(control("who")));

  // A page left for another one may be kept, frozen, in the back/forward
  // cache with its socket open: its member would stay in the room and its
  // nickname taken for as long as the browser keeps it. Leave on pagehide;
  // come back (same nickname and room) on pageshow from the cache.
  window.addEventListener("pagehide", () => {
    const ws = state.ws;
    state.ws = null; // its onclose must not schedule a reconnection
    clearTimeout(state.retryTimer);
    clearInterval(state.whoTimer);
    if (ws) {
      ws.close(1000, "page hidden");
    }
    if (state.nick) {
      state.wantNick = state.nick;
    }
    setStatus("closed", "Disconnected: the page was left.");
  });
  window.addEventListener("pageshow", (ev) => {
    if (ev.persisted) {
      state.retries = 0;
      connect();
    }
  });

  connect();
})();
