// The Slack emulator's web view: a small Slack client for people. It reads the workspace from
// /web/changes (only what changed since the version it has, told by /web/events) and acts
// through /web/command, /web/click and /web/post.
//
// Every text that comes from the app or from people is put into the page as text nodes
// (Node.append of a string, textContent), never parsed as HTML, and links get an href only for
// http(s) and mailto URLs.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);

  // el builds an element. Attributes are set one by one; children are nodes or strings, and
  // strings become text nodes.
  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      n.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c !== undefined && c !== null && c !== false) n.append(c);
    }
    return n;
  }

  // ---------------------------------------------------------------- mrkdwn

  // Emoji shortcodes: the ones the bot uses, and common ones a person may type.
  const EMOJI = {
    white_check_mark: "\u2705", heavy_check_mark: "\u2714\uFE0F", x: "\u274C", warning: "\u26A0\uFE0F",
    hourglass_flowing_sand: "\u23F3", hourglass: "\u231B", tada: "\uD83C\uDF89", no_entry_sign: "\uD83D\uDEAB",
    no_entry: "\u26D4", rocket: "\uD83D\uDE80", red_circle: "\uD83D\uDD34", large_orange_circle: "\uD83D\uDFE0",
    large_blue_circle: "\uD83D\uDD35", large_green_circle: "\uD83D\uDFE2", white_circle: "\u26AA",
    large_yellow_circle: "\uD83D\uDFE1", information_source: "\u2139\uFE0F", eyes: "\uD83D\uDC40",
    stopwatch: "\u23F1\uFE0F", alarm_clock: "\u23F0", bell: "\uD83D\uDD14", calendar: "\uD83D\uDCC6",
    spiral_calendar_pad: "\uD83D\uDDD3\uFE0F", rotating_light: "\uD83D\uDEA8", arrows_counterclockwise: "\uD83D\uDD04",
    arrow_right: "\u27A1\uFE0F", point_right: "\uD83D\uDC49", "+1": "\uD83D\uDC4D", thumbsup: "\uD83D\uDC4D",
    "-1": "\uD83D\uDC4E", thumbsdown: "\uD83D\uDC4E", lock: "\uD83D\uDD12", unlock: "\uD83D\uDD13", key: "\uD83D\uDD11",
    fire: "\uD83D\uDD25", boom: "\uD83D\uDCA5", construction: "\uD83D\uDEA7", bulb: "\uD83D\uDCA1", memo: "\uD83D\uDCDD",
    link: "\uD83D\uDD17", mag: "\uD83D\uDD0D", stop_sign: "\uD83D\uDED1", exclamation: "\u2757",
    heavy_exclamation_mark: "\u2757", question: "\u2753", sparkles: "\u2728", zap: "\u26A1",
    checkered_flag: "\uD83C\uDFC1", hammer_and_wrench: "\uD83D\uDEE0\uFE0F", gear: "\u2699\uFE0F",
    package: "\uD83D\uDCE6", clipboard: "\uD83D\uDCCB", computer: "\uD83D\uDCBB", cloud: "\u2601\uFE0F",
    wave: "\uD83D\uDC4B", smile: "\uD83D\uDE04", slightly_smiling_face: "\uD83D\uDE42", pray: "\uD83D\uDE4F",
    ok_hand: "\uD83D\uDC4C", arrow_up: "\u2B06\uFE0F", arrow_down: "\u2B07\uFE0F", recycle: "\u267B\uFE0F",
    skull: "\uD83D\uDC80", heart: "\u2764\uFE0F", star: "\u2B50", new: "\uD83C\uDD95", ok: "\uD83C\uDD97",
  };

  const ENTITIES = { "&lt;": "<", "&gt;": ">", "&amp;": "&" };

  // decode turns Slack's three entities back into characters, for display.
  const decode = (s) => s.replace(/&(?:lt|gt|amp);/g, (e) => ENTITIES[e]);

  const isWord = (c) => c !== undefined && /[\p{L}\p{N}]/u.test(c);
  const isSpace = (c) => c === undefined || /\s/u.test(c);

  // text appends raw mrkdwn text (no markup left in it) to out: entities decoded, emoji
  // shortcodes shown as emoji when emoji is true.
  function text(raw, out, emoji = true) {
    const s = decode(raw);
    if (!emoji) {
      out.append(s);
      return;
    }
    const re = /:([a-z0-9_+-]+):/g;
    let last = 0;
    let m;
    while ((m = re.exec(s))) {
      const e = EMOJI[m[1]];
      if (!e) {
        re.lastIndex = m.index + 1; // the closing colon may open the next shortcode
        continue;
      }
      if (m.index > last) out.append(s.slice(last, m.index));
      out.append(el("span", { class: "emoji", role: "img", "aria-label": m[1].replace(/_/g, " "), title: m[0] }, e));
      last = re.lastIndex;
    }
    if (last < s.length) out.append(s.slice(last));
  }

  // safeURL returns url when a link to it may be followed (http, https, mailto), else "".
  function safeURL(url) {
    return /^(https?:\/\/|mailto:)/i.test(url) ? url : "";
  }

  // permalink reads a Slack message link (https://…slack.com/archives/C…/p1700000000000100).
  function permalink(url) {
    const m = /^https:\/\/[^/]*slack\.com\/archives\/([A-Z0-9]+)\/p(\d{10})(\d{6})/.exec(url);
    return m ? { channel: m[1], ts: `${m[2]}.${m[3]}` } : null;
  }

  function link(url, label) {
    const a = el("a", { href: url, target: "_blank", rel: "noopener noreferrer" });
    a.append(label);
    const p = permalink(url);
    if (p) {
      a.addEventListener("click", (e) => {
        e.preventDefault();
        openPermalink(p.channel, p.ts);
      });
    }
    return a;
  }

  // token renders Slack's angle-bracket markup: <@U…>, <#C…>, <!here>, <!date^…>, <url|label>.
  // inner is what stands between the brackets.
  function token(inner) {
    const bar = inner.indexOf("|");
    const target = bar >= 0 ? inner.slice(0, bar) : inner;
    const label = bar >= 0 ? decode(inner.slice(bar + 1)) : "";
    switch (target[0]) {
      case "@": {
        const id = target.slice(1);
        const self = id === state.as ? " self" : "";
        return el("span", { class: "mention" + self, "data-user": id }, "@" + (state.users.get(id) || label || id));
      }
      case "#": {
        const id = target.slice(1);
        const name = state.channels.get(id) || label || id;
        const a = el("a", { class: "channel-link", href: `?channel=${encodeURIComponent(id)}` }, "#" + name);
        a.addEventListener("click", (e) => {
          e.preventDefault();
          selectChannel(id);
        });
        return a;
      }
      case "!": {
        const cmd = target.slice(1);
        if (cmd === "here" || cmd === "channel" || cmd === "everyone") {
          return el("span", { class: "mention broadcast" }, "@" + cmd);
        }
        if (cmd.startsWith("subteam^")) {
          return el("span", { class: "mention" }, "@" + (label.replace(/^@/, "") || cmd.slice(8)));
        }
        if (cmd.startsWith("date^")) return date(cmd, label);
        return document.createTextNode(label || "<" + decode(inner) + ">");
      }
    }
    const url = safeURL(decode(target));
    if (!url) return document.createTextNode(label || decode(target));
    return link(url, label || url);
  }

  // tokenText is the text a token shows, for code spans and previews.
  function tokenText(inner) {
    const n = token(inner);
    return n.textContent;
  }

  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
  const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
  const pad = (n) => String(n).padStart(2, "0");
  const ordinal = (n) => n + (n % 10 === 1 && n !== 11 ? "st" : n % 10 === 2 && n !== 12 ? "nd" : n % 10 === 3 && n !== 13 ? "rd" : "th");

  function clock(d, secs) {
    const h = d.getHours() % 12 || 12;
    return `${h}:${pad(d.getMinutes())}${secs ? ":" + pad(d.getSeconds()) : ""} ${d.getHours() < 12 ? "AM" : "PM"}`;
  }

  function dayOffset(d) {
    const a = new Date(d.getFullYear(), d.getMonth(), d.getDate());
    const now = new Date();
    const b = new Date(now.getFullYear(), now.getMonth(), now.getDate());
    return Math.round((a - b) / 86400000);
  }

  function pretty(d, plain) {
    return { 0: "today", "-1": "yesterday", 1: "tomorrow" }[dayOffset(d)] || plain(d);
  }

  function ago(d) {
    const s = Math.round((Date.now() - d.getTime()) / 1000);
    const units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
    const abs = Math.abs(s);
    for (const [name, size] of units) {
      if (abs >= size) {
        const n = Math.floor(abs / size);
        const t = `${n} ${name}${n === 1 ? "" : "s"}`;
        return s >= 0 ? `${t} ago` : `in ${t}`;
      }
    }
    return "just now";
  }

  const DATE_TOKENS = {
    date_num: (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
    date: (d) => `${MONTHS[d.getMonth()]} ${ordinal(d.getDate())}, ${d.getFullYear()}`,
    date_short: (d) => `${MONTHS[d.getMonth()].slice(0, 3)} ${d.getDate()}, ${d.getFullYear()}`,
    date_long: (d) => `${DAYS[d.getDay()]}, ${MONTHS[d.getMonth()]} ${ordinal(d.getDate())}, ${d.getFullYear()}`,
    date_pretty: (d) => pretty(d, DATE_TOKENS.date),
    date_short_pretty: (d) => pretty(d, DATE_TOKENS.date_short),
    date_long_pretty: (d) => pretty(d, DATE_TOKENS.date_long),
    time: (d) => clock(d, false),
    time_secs: (d) => clock(d, true),
    ago: (d) => ago(d),
  };

  // date renders <!date^UNIX^FORMAT[^LINK]|FALLBACK> in the reader's time zone.
  function date(spec, fallback) {
    const [, unix, format, url] = spec.split("^");
    const secs = Number(unix);
    if (!format || !/^-?\d+$/.test(unix || "") || !Number.isFinite(secs)) {
      return document.createTextNode(fallback);
    }
    const d = new Date(secs * 1000);
    const shown = decode(format).replace(/\{(\w+)\}/g, (all, k) => (DATE_TOKENS[k] ? DATE_TOKENS[k](d) : all));
    const t = el("time", { datetime: d.toISOString(), title: d.toString() }, shown);
    const href = url ? safeURL(decode(url)) : "";
    return href ? link(href, t) : t;
  }

  const TAGS = { "*": "b", _: "i", "~": "s" };

  // skip returns where the construct that starts at s[i] ends (a token or a code span), so
  // that a closing marker is not looked for inside it; i itself when there is none.
  function skip(s, i) {
    if (s[i] === "<") {
      const j = s.indexOf(">", i + 1);
      if (j > i + 1 && !s.slice(i + 1, j).includes("<")) return j;
    }
    if (s[i] === "`") {
      const j = s.indexOf("`", i + 1);
      if (j > i + 1) return j;
    }
    return i;
  }

  // opens reports whether the marker at s[i] may open a span: at a word boundary (start, space
  // or punctuation before it) and with no space after it.
  function opens(s, i) {
    const before = s[i - 1];
    return (i === 0 || !isWord(before)) && before !== s[i] && !isSpace(s[i + 1]) && s[i + 1] !== s[i];
  }

  // closer finds the marker that closes the span opened at s[i]: no space before it, a word
  // boundary after it. It returns -1 when there is none.
  function closer(s, i) {
    const c = s[i];
    for (let k = i + 2; k < s.length; k++) {
      const end = skip(s, k);
      if (end !== k) {
        k = end;
        continue;
      }
      if (s[k] === c && !isSpace(s[k - 1]) && !isWord(s[k + 1])) return k;
    }
    return -1;
  }

  // inline renders one line of mrkdwn into out.
  function inline(s, out) {
    let start = 0;
    const flush = (i) => {
      if (i > start) text(s.slice(start, i), out);
    };
    let i = 0;
    while (i < s.length) {
      const c = s[i];
      let end = -1;
      let node = null;
      if (c === "<") {
        const j = skip(s, i);
        if (j !== i) {
          node = token(s.slice(i + 1, j));
          end = j;
        }
      } else if (c === "`") {
        const j = skip(s, i);
        if (j !== i) {
          node = el("code", {}, codeText(s.slice(i + 1, j)));
          end = j;
        }
      } else if (TAGS[c] && opens(s, i)) {
        const j = closer(s, i);
        if (j > 0) {
          node = el(TAGS[c]);
          inline(s.slice(i + 1, j), node);
          end = j;
        }
      }
      if (node) {
        flush(i);
        out.append(node);
        i = end + 1;
        start = i;
      } else {
        i++;
      }
    }
    flush(s.length);
  }

  // codeText is the text of a code span or block: tokens shown as their text, entities
  // decoded, nothing else interpreted.
  function codeText(s) {
    let out = "";
    let last = 0;
    const re = /<([^<>]+)>/g;
    let m;
    while ((m = re.exec(s))) {
      out += decode(s.slice(last, m.index)) + tokenText(m[1]);
      last = re.lastIndex;
    }
    return out + decode(s.slice(last));
  }

  // lines renders text with no code block in it: quotes ("> " at the start of a line) and
  // the lines between them.
  function lines(s, out) {
    let quote = null;
    s.split("\n").forEach((line, i) => {
      if (line.startsWith(">")) {
        if (quote) quote.append("\n");
        else out.append((quote = el("blockquote")));
        inline(line.slice(1).replace(/^ /, ""), quote);
        return;
      }
      if (i > 0 && !quote) out.append("\n");
      quote = null;
      inline(line, out);
    });
  }

  // mrkdwn renders Slack's mrkdwn into a fragment of elements and text nodes.
  function mrkdwn(s) {
    const frag = document.createDocumentFragment();
    const re = /```([\s\S]*?)```/g;
    let last = 0;
    let m;
    while ((m = re.exec(s))) {
      lines(s.slice(last, m.index).replace(/\n$/, ""), frag);
      frag.append(el("pre", { class: "code-block" }, codeText(m[1].replace(/^\n/, "").replace(/\n$/, ""))));
      last = re.lastIndex;
      if (s[last] === "\n") last++;
    }
    if (last < s.length || last === 0) lines(s.slice(last), frag);
    return frag;
  }

  // plain renders a plain_text string: entities decoded, emoji when asked.
  function plain(s, emoji = true) {
    const frag = document.createDocumentFragment();
    text(s || "", frag, emoji);
    return frag;
  }

  // textObject renders a Block Kit text object.
  function textObject(t) {
    if (!t) return "";
    if (typeof t === "string") return plain(t);
    return t.type === "mrkdwn" ? mrkdwn(t.text || "") : plain(t.text || "", t.emoji !== false);
  }

  // ---------------------------------------------------------------- state

  const state = {
    ws: null,
    users: new Map(), // id -> name
    channels: new Map(), // id -> name
    channel: "",
    as: "",
    version: 0,
    gen: 0, // grows when channel or person changes; answers for an older one are dropped
    fetching: false,
    again: false,
    msgs: new Map(), // ts -> message, as the server sent it
    replies: new Map(), // parent ts -> Map(reply ts -> posted ms)
    thread: "", // ts of the open thread's parent
    notices: 0,
  };

  const isReply = (m) => !!m.thread_ts && m.thread_ts !== m.ts;
  const inChannel = (m) => !m.deleted && (!isReply(m) || (m.broadcast && !m.ephemeral));
  const inThread = (m, t) => !m.deleted && !!t && (m.ts === t || m.thread_ts === t);

  // MessageList keeps the nodes of one column in ts order, so that a change replaces one
  // node and a new message is inserted where it belongs; nothing else is rebuilt.
  class MessageList {
    constructor(root) {
      this.root = root;
      this.nodes = new Map();
      this.order = [];
    }
    put(key, node) {
      const old = this.nodes.get(key);
      this.nodes.set(key, node);
      if (old) {
        old.replaceWith(node);
        return;
      }
      let lo = 0;
      let hi = this.order.length;
      if (hi === 0 || this.order[hi - 1] < key) {
        lo = hi; // the common case: newest last
      }
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.order[mid] < key) lo = mid + 1;
        else hi = mid;
      }
      const before = lo < this.order.length ? this.nodes.get(this.order[lo]) : null;
      this.order.splice(lo, 0, key);
      this.root.insertBefore(node, before);
    }
    remove(key) {
      const n = this.nodes.get(key);
      if (!n) return;
      n.remove();
      this.nodes.delete(key);
      this.order.splice(this.order.indexOf(key), 1);
    }
    last() {
      return this.order[this.order.length - 1] || "";
    }
    clear() {
      this.root.replaceChildren();
      this.nodes.clear();
      this.order = [];
    }
  }

  let channelList;
  let threadList;

  const userName = (id) => state.users.get(id) || id;

  function timeOf(ms) {
    const d = new Date(ms);
    return el("time", { datetime: d.toISOString(), title: d.toString() }, clock(d, false));
  }

  // ---------------------------------------------------------------- messages

  // A message shows at most this much text at first, as Slack folds long messages: further
  // text blocks wait behind a "Show more" button, while headers, context, dividers and buttons
  // still show. A status answer of thousands of servers stays cheap to show and usable.
  const FOLD_CHARS = 4000;
  const TEXT_BLOCKS = new Set(["section", "markdown", "rich_text"]);

  function blockSize(b) {
    let n = typeof b.text === "string" ? b.text.length : (b.text && b.text.text && b.text.text.length) || 0;
    for (const f of b.fields || []) n += (f.text || "").length;
    return n;
  }

  function showMore(render) {
    const b = el("button", { type: "button", class: "show-more" }, "Show more");
    b.addEventListener("click", () => b.replaceWith(render()));
    return b;
  }

  function content(m) {
    const box = el("div", { class: "content" });
    const blocks = Array.isArray(m.blocks) && m.blocks.length ? m.blocks : null;
    if (!blocks) {
      const t = m.text || "";
      const cut = t.length > FOLD_CHARS ? t.lastIndexOf("\n", FOLD_CHARS) + 1 || FOLD_CHARS : t.length;
      const div = el("div", { class: "text" }, mrkdwn(t.slice(0, cut)));
      box.append(div);
      if (cut < t.length) {
        box.append(showMore(() => {
          div.replaceChildren(mrkdwn(t));
          return document.createDocumentFragment();
        }));
      }
      return box;
    }
    let used = 0;
    let folded = [];
    const unfold = () => {
      if (!folded.length) return;
      const rest = folded;
      folded = [];
      box.append(showMore(() => {
        const frag = document.createDocumentFragment();
        for (const b of rest) frag.append(block(m, b));
        return frag;
      }));
    };
    for (const b of blocks) {
      if (TEXT_BLOCKS.has(b.type) && used > FOLD_CHARS) {
        folded.push(b);
        continue;
      }
      unfold();
      used += blockSize(b);
      box.append(block(m, b));
    }
    unfold();
    return box;
  }

  function block(m, b) {
    switch (b.type) {
      case "header":
        return el("div", { class: "b-header", role: "heading", "aria-level": "3" }, textObject(b.text));
      case "section": {
        const main = el("div", { class: "b-main" });
        if (b.text) main.append(el("div", { class: "b-text" }, textObject(b.text)));
        if (b.fields && b.fields.length) {
          main.append(el("div", { class: "b-fields" }, ...b.fields.map((f) => el("div", { class: "b-field" }, textObject(f)))));
        }
        const s = el("div", { class: "b-section" }, main);
        if (b.accessory) s.append(el("div", { class: "b-accessory" }, element(m, b.accessory)));
        return s;
      }
      case "context":
        return el("div", { class: "b-context" }, ...(b.elements || []).map((e) =>
          e.type === "image"
            ? el("span", { class: "b-image-alt", role: "img", "aria-label": e.alt_text || "image" }, "\uD83D\uDDBC")
            : el("span", { class: "b-context-item" }, textObject(e))));
      case "divider":
        return el("hr", { class: "b-divider" });
      case "actions":
        return el("div", { class: "b-actions" }, ...(b.elements || []).map((e) => element(m, e)));
      case "markdown":
        return el("div", { class: "b-markdown" }, mrkdwn(b.text || ""));
      case "rich_text":
        return el("div", { class: "b-rich" }, richText(b.elements || []));
      case "image":
        return el("div", { class: "b-image-alt" }, `[image: ${b.alt_text || ""}]`);
    }
    return el("div", { class: "b-unknown" }, `[${b.type} block]`);
  }

  // richText shows a rich_text block's text with its basic styles.
  function richText(elements) {
    const frag = document.createDocumentFragment();
    for (const e of elements) {
      switch (e.type) {
        case "rich_text_section":
        case "rich_text_quote":
        case "rich_text_preformatted": {
          const tag = { rich_text_quote: "blockquote", rich_text_preformatted: "pre" }[e.type] || "div";
          frag.append(el(tag, {}, richText(e.elements || [])));
          break;
        }
        case "rich_text_list":
          frag.append(el(e.style === "ordered" ? "ol" : "ul", {}, ...(e.elements || []).map((i) => el("li", {}, richText(i.elements || [])))));
          break;
        case "text": {
          let n = document.createTextNode(e.text || "");
          const st = e.style || {};
          for (const [k, tag] of [["code", "code"], ["strike", "s"], ["italic", "i"], ["bold", "b"]]) {
            if (st[k]) n = el(tag, {}, n);
          }
          frag.append(n);
          break;
        }
        case "link": {
          const url = safeURL(e.url || "");
          frag.append(url ? link(url, e.text || url) : e.text || e.url || "");
          break;
        }
        case "user":
          frag.append(token("@" + e.user_id));
          break;
        case "channel":
          frag.append(token("#" + e.channel_id));
          break;
        case "emoji":
          frag.append(plain(`:${e.name}:`));
          break;
        default:
          frag.append(e.text || "");
      }
    }
    return frag;
  }

  function element(m, e) {
    if (e.type !== "button") return el("span", { class: "b-unsupported" }, `[${e.type}]`);
    const b = el("button", { type: "button", class: "btn" + (e.style ? " " + e.style : ""), "data-action-id": e.action_id || "" },
      plain((e.text && e.text.text) || "", !e.text || e.text.emoji !== false));
    if (e.accessibility_label) b.setAttribute("aria-label", e.accessibility_label);
    b.addEventListener("click", () => press(m, e, b));
    return b;
  }

  function message(m, where) {
    const bot = state.ws && m.user === state.ws.bot;
    const name = m.slackbot ? "Slackbot" : userName(m.user);
    const classes = ["msg"];
    if (m.ephemeral) classes.push("ephemeral");
    if (m.broadcast) classes.push("broadcast");
    const body = el("div", { class: "body" });
    if (m.ephemeral) {
      body.append(el("div", { class: "eph-note" }, el("span", { "aria-hidden": "true" }, "\uD83D\uDC41 "), "Only visible to you"));
    }
    if (isReply(m) && m.broadcast) {
      if (where === "channel") {
        const open = el("button", { type: "button", class: "link-button" }, preview(state.msgs.get(m.thread_ts)));
        open.addEventListener("click", () => openThread(m.thread_ts));
        body.append(el("div", { class: "bc-note" }, "replied to a thread: ", open));
      } else {
        body.append(el("div", { class: "bc-note" }, "Also sent to the channel"));
      }
    }
    body.append(el("div", { class: "meta" },
      el("span", { class: "author" }, name),
      bot ? el("span", { class: "badge" }, "APP") : null,
      m.posted ? timeOf(m.posted) : null));
    const c = m.slackbot ? el("div", { class: "content" }, el("div", { class: "text" }, m.text)) : content(m);
    if (m.edited) c.append(el("span", { class: "edited" }, "(edited)"));
    body.append(c);
    if (where === "channel" && !isReply(m) && !m.ephemeral) {
      body.append(summary(m.ts));
    }
    return el("article", { class: classes.join(" "), "data-ts": m.ts },
      el("div", { class: "avatar" + (bot ? " bot" : ""), "aria-hidden": "true" }, (name[0] || "?").toUpperCase()),
      body);
  }

  // preview is a short plain text of a message, for "replied to a thread".
  function preview(m) {
    if (!m) return "a message";
    const d = el("div");
    d.append(mrkdwn(m.text || ""));
    const t = d.textContent.replace(/\s+/g, " ").trim();
    return t.length > 80 ? t.slice(0, 79) + "\u2026" : t || "a message";
  }

  // summary is the reply count under a thread's parent.
  function summary(ts) {
    const box = el("div", { class: "thread-summary" });
    const replies = state.replies.get(ts);
    const n = replies ? replies.size : 0;
    if (n === 0) {
      box.hidden = true;
      return box;
    }
    const b = el("button", { type: "button", class: "replies" }, `${n} ${n === 1 ? "reply" : "replies"}`);
    b.addEventListener("click", () => openThread(ts));
    box.append(b, el("span", { class: "last-reply" }, "Last reply ", timeOf(Math.max(...replies.values()))));
    return box;
  }

  function updateSummary(ts) {
    const node = channelList.nodes.get(ts);
    const old = node && node.querySelector(":scope > .body > .thread-summary");
    if (old) old.replaceWith(summary(ts));
  }

  function trackReply(m) {
    if (!isReply(m) || m.ephemeral) return;
    let r = state.replies.get(m.thread_ts);
    if (!r) state.replies.set(m.thread_ts, (r = new Map()));
    if (m.deleted) r.delete(m.ts);
    else r.set(m.ts, m.posted);
  }

  const nearBottom = (root) => root.scrollHeight - root.scrollTop - root.clientHeight < 80;

  // follow keeps a column scrolled to its newest message while the reader is there, as Slack
  // does. It returns the function to call after messages were added; with pin set, the column
  // goes to its newest message whatever the reader did (a channel or thread just opened).
  // Messages off screen are laid out only when they scroll into view (content-visibility), so
  // the bottom moves once they are: the column is pinned again for two more frames.
  function follow(root) {
    let pinned = true;
    root.addEventListener("scroll", () => {
      pinned = nearBottom(root);
    });
    const stick = () => {
      if (pinned) root.scrollTop = root.scrollHeight;
    };
    new ResizeObserver(stick).observe(root);
    return (pin) => {
      if (pin) pinned = true;
      stick();
      requestAnimationFrame(() => {
        stick();
        requestAnimationFrame(stick);
      });
    };
  }
  let stickChannel = () => {};
  let stickThread = () => {};

  // stats says how much work the page did, for tests and for the curious (slackemuWeb.stats).
  const stats = { fetches: 0, fetchMs: 0, applies: 0, applyMs: 0, maxApplyMs: 0, messages: 0 };

  // A batch of changes is shown in slices of at most this many milliseconds of work, newest
  // messages first, with the browser free to draw and answer the person in between: a channel
  // of hundreds of messages loads without freezing the page.
  const SLICE_MS = 30;
  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

  function show(m) {
    if (inChannel(m)) channelList.put(m.ts, message(m, "channel"));
    else channelList.remove(m.ts);
    if (inThread(m, state.thread)) threadList.put(m.ts, message(m, "thread"));
    else threadList.remove(m.ts);
  }

  // timed runs fn and counts its time as rendering in stats.
  function timed(fn) {
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      const ms = performance.now() - t0;
      stats.applies++;
      stats.applyMs += ms;
      stats.maxApplyMs = Math.max(stats.maxApplyMs, ms);
    }
  }

  // apply shows a batch of changes: each new or changed message replaces or adds one node;
  // nothing else is rebuilt. It returns false when the channel or person changed meanwhile.
  async function apply(d, gen) {
    if (d.workspace && setWorkspace(d.workspace)) {
      // The channel or the person was not known before: what came is not for them.
      state.gen++;
      state.version = 0;
      state.again = true;
      return false;
    }
    const changed = d.messages.filter((m) => {
      const old = state.msgs.get(m.ts);
      return !old || old.rev !== m.rev;
    });
    stats.messages += changed.length;
    const parents = new Set();
    for (const m of changed) {
      state.msgs.set(m.ts, m);
      if (isReply(m)) {
        trackReply(m);
        parents.add(m.thread_ts);
      }
    }
    let i = changed.length;
    while (i > 0) {
      timed(() => {
        const t0 = performance.now();
        while (i > 0 && performance.now() - t0 < SLICE_MS) show(changed[--i]);
      });
      stickChannel();
      stickThread();
      if (i > 0) {
        await nextFrame();
        if (gen !== state.gen) return false;
      }
    }
    timed(() => {
      for (const p of parents) updateSummary(p);
    });
    state.version = d.version;
    document.body.dataset.version = String(d.version);
    document.body.dataset.ready = "true";
    stickChannel();
    stickThread();
    return true;
  }

  // setWorkspace shows the workspace's people and channels. It reports whether it had to
  // choose the channel or the person, because the ones asked for do not exist.
  function setWorkspace(ws) {
    let chose = false;
    state.ws = ws;
    state.users = new Map(ws.users.map((u) => [u.id, u.name]));
    state.channels = new Map(ws.channels.map((c) => [c.id, c.name]));
    $("team").textContent = ws.team;
    const picker = $("acting-as");
    picker.replaceChildren(...ws.people.map((id) => el("option", { value: id }, userName(id))));
    if (!ws.people.includes(state.as)) {
      const as = ws.people[0] || "";
      chose = as !== state.as;
      state.as = as;
    }
    picker.value = state.as;
    if (!state.channels.has(state.channel)) {
      const channel = ws.channels.length ? ws.channels[0].id : "";
      chose = chose || channel !== state.channel;
      state.channel = channel;
    }
    const list = $("channels");
    list.replaceChildren(...ws.channels.map((c) => {
      const a = el("a", { href: `?channel=${encodeURIComponent(c.id)}`, "aria-current": c.id === state.channel ? "page" : null },
        el("span", { "aria-hidden": "true" }, "# "), c.name);
      a.addEventListener("click", (e) => {
        e.preventDefault();
        selectChannel(c.id);
      });
      return el("li", {}, a);
    }));
    showChannel();
    return chose;
  }

  function showChannel() {
    const name = state.channels.get(state.channel) || "";
    $("channel-name").textContent = name;
    document.title = `#${name} \u2013 Slack emulator`;
    for (const a of $("channels").querySelectorAll("a")) {
      if (a.getAttribute("href") === `?channel=${encodeURIComponent(state.channel)}`) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    const cmd = state.ws ? state.ws.command : "/";
    $("composer").placeholder = `Message #${name}`;
    $("hint").textContent = `Type ${cmd} help and press Enter; you act as ${userName(state.as)}. Shift+Enter adds a line.`;
    const u = new URL(location.href);
    u.searchParams.set("channel", state.channel);
    u.searchParams.set("as", state.as);
    if (state.thread) u.searchParams.set("thread", state.thread);
    else u.searchParams.delete("thread");
    history.replaceState(null, "", u);
  }

  // reset forgets what is shown and fetches the channel again, for another channel or person.
  function reset() {
    document.body.dataset.ready = "false";
    state.gen++;
    state.version = 0;
    state.msgs.clear();
    state.replies.clear();
    channelList.clear();
    threadList.clear();
    stickChannel(true);
    showChannel();
    refresh();
  }

  function selectChannel(id) {
    if (id === state.channel) return;
    state.channel = id;
    closeThread();
    reset();
  }

  function openThread(ts) {
    state.thread = ts;
    threadList.clear();
    timed(() => {
      for (const m of state.msgs.values()) {
        if (inThread(m, ts)) threadList.put(m.ts, message(m, "thread"));
      }
    });
    $("thread-channel").textContent = "#" + (state.channels.get(state.channel) || "");
    $("thread").hidden = false;
    stickThread(true);
    showChannel();
  }

  function closeThread() {
    state.thread = "";
    threadList.clear();
    $("thread").hidden = true;
    showChannel();
  }

  function openPermalink(channel, ts) {
    if (channel !== state.channel && state.channels.has(channel)) {
      state.channel = channel;
      reset();
    }
    openThread(ts);
  }

  // notice shows a message from Slack itself to the person acting, as the Slack client does
  // when a command fails; it is not part of the workspace and goes away on reload.
  function notice(text) {
    const key = `${channelList.last()}~${String(++state.notices).padStart(6, "0")}`;
    const m = { ts: key, slackbot: true, ephemeral: true, text, posted: Date.now() };
    channelList.put(key, message(m, "channel"));
    stickChannel();
  }

  // ---------------------------------------------------------------- talking to the emulator

  async function refresh() {
    if (state.fetching) {
      state.again = true;
      return;
    }
    state.fetching = true;
    try {
      do {
        state.again = false;
        const gen = state.gen;
        const q = new URLSearchParams({ channel: state.channel, as: state.as, since: String(state.version) });
        const t0 = performance.now();
        const res = await fetch(`/web/changes?${q}`, { cache: "no-store" });
        if (!res.ok) throw new Error(`changes: HTTP ${res.status}`);
        const d = await res.json();
        stats.fetches++;
        stats.fetchMs += performance.now() - t0;
        if (gen !== state.gen || !(await apply(d, gen))) {
          state.again = true;
          continue;
        }
      } while (state.again);
    } catch (err) {
      $("conn").textContent = "offline: " + err.message;
    } finally {
      state.fetching = false;
    }
  }

  async function post(path, body) {
    try {
      const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      return await res.json();
    } catch (err) {
      return { ok: false, error: "emulator_unreachable" };
    }
  }

  async function press(m, e, btn) {
    if (e.confirm && !(await confirmDialog(e.confirm))) return;
    if (e.url) {
      const p = permalink(e.url);
      if (p) openPermalink(p.channel, p.ts);
      else if (safeURL(e.url)) window.open(e.url, "_blank", "noopener,noreferrer");
    }
    btn.disabled = true;
    btn.setAttribute("aria-busy", "true");
    const r = await post("/web/click", { user: state.as, channel: m.channel, ts: m.ts, action_id: e.action_id || "" });
    btn.disabled = false;
    btn.removeAttribute("aria-busy");
    if (!r.ok) {
      const app = userName(state.ws ? state.ws.bot : "");
      notice(r.error === "operation_timeout" ? `${app} did not respond to your click in time (operation_timeout).` : `Your click could not be sent: ${r.error}.`);
    }
  }

  // confirmDialog shows a button's confirm dialog and resolves to whether it was confirmed.
  function confirmDialog(c) {
    const d = $("confirm");
    $("confirm-title").replaceChildren(textObject(c.title) || "Are you sure?");
    $("confirm-text").replaceChildren(textObject(c.text));
    $("confirm-ok").replaceChildren(textObject(c.confirm) || "Yes");
    $("confirm-deny").replaceChildren(textObject(c.deny) || "Cancel");
    $("confirm-ok").className = "btn " + (c.style === "danger" ? "danger" : "primary");
    d.returnValue = "";
    return new Promise((resolve) => {
      d.addEventListener("close", () => resolve(d.returnValue === "confirm"), { once: true });
      d.showModal();
    });
  }

  const COMMAND_ERRORS = {
    dispatch_failed: (cmd) => `${cmd} failed with the error "dispatch_failed": no app is connected to the workspace.`,
    operation_timeout: (cmd) => `${cmd} failed with the error "operation_timeout".`,
    unknown_command: (cmd) => `${cmd} is not a valid command. In Slack, all messages that start with the "/" character are interpreted as commands.`,
  };

  async function submit() {
    const box = $("composer");
    const input = box.value.trim();
    if (!input) return;
    box.value = "";
    if (input.startsWith("/")) {
      const cmd = input.split(/\s/)[0];
      const r = await post("/web/command", { user: state.as, channel: state.channel, text: input });
      if (!r.ok) notice((COMMAND_ERRORS[r.error] || ((c) => `${c} failed: ${r.error}.`))(cmd));
      return;
    }
    const r = await post("/web/post", { user: state.as, channel: state.channel, text: input });
    if (!r.ok) notice(`Your message could not be posted: ${r.error}.`);
  }

  function listen() {
    const es = new EventSource("/web/events");
    es.addEventListener("open", () => {
      $("conn").textContent = "live";
    });
    es.addEventListener("error", () => {
      $("conn").textContent = "reconnecting\u2026";
    });
    es.addEventListener("version", (e) => {
      const v = Number(e.data);
      if (v < state.version) reset(); // the emulator restarted
      else if (v > state.version) refresh();
    });
  }

  function start() {
    channelList = new MessageList($("messages"));
    threadList = new MessageList($("thread-messages"));
    stickChannel = follow($("messages"));
    stickThread = follow($("thread-messages"));
    const q = new URLSearchParams(location.search);
    state.channel = q.get("channel") || "";
    state.as = q.get("as") || "";
    const thread = q.get("thread") || "";
    $("acting-as").addEventListener("change", (e) => {
      state.as = e.target.value;
      reset();
    });
    $("composer").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        submit();
      }
    });
    $("composer-form").addEventListener("submit", (e) => {
      e.preventDefault();
      submit();
    });
    $("thread-close").addEventListener("click", closeThread);
    if (thread) openThread(thread);
    listen();
    refresh();
  }

  // For tests: the markup mrkdwn produces for a text, and the page's work so far.
  window.slackemuWeb = {
    stats,
    mrkdwnHTML(s) {
      const d = el("div");
      d.append(mrkdwn(s));
      return d.innerHTML;
    },
  };

  document.addEventListener("DOMContentLoaded", start);
})();
