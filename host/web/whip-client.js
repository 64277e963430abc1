// Gatehouse shared browser module: WHIP/WHEP session logic plus small page helpers.
// Served at /whip-client.js and imported by publish.html and play.html.

/** Splits `text` on `sep`, ignoring separators inside <...> or "..." (with \" escapes). */
function splitOutside(text, sep) {
  const parts = [];
  let cur = '', angle = false, quote = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote && ch === '\\' && i + 1 < text.length) { cur += ch + text[++i]; continue; }
    if (ch === '"' && !angle) quote = !quote;
    else if (!quote && ch === '<') angle = true;
    else if (!quote && ch === '>') angle = false;
    if (ch === sep && !angle && !quote) { parts.push(cur); cur = ''; } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter(Boolean);
}

/** Parses an HTTP Link header (possibly several, comma-joined) into [{url, params}]. */
export function parseLinkHeader(header) {
  const links = [];
  for (const entry of splitOutside(header || '', ',')) {
    const m = /^<([^>]*)>\s*(.*)$/s.exec(entry);
    if (!m) continue;
    const params = {};
    for (const p of splitOutside(m[2], ';')) {
      const eq = p.indexOf('=');
      const key = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
      let value = eq < 0 ? '' : p.slice(eq + 1).trim();
      if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) {
        value = value.slice(1, -1).replace(/\\(.)/g, '$1');
      }
      params[key] = value;
    }
    links.push({ url: m[1], params });
  }
  return links;
}

/** Converts `rel="ice-server"` links into RTCIceServer dictionaries. */
export function iceServersFromLinks(links) {
  return links
    .filter((l) => (l.params.rel || '').toLowerCase().split(/\s+/).includes('ice-server'))
    .map((l) => {
      const server = { urls: l.url };
      if (l.params.username !== undefined) server.username = l.params.username;
      if (l.params.credential !== undefined) server.credential = l.params.credential;
      return server;
    });
}

export class HttpError extends Error {
  constructor(method, url, status, statusText, body) {
    const path = new URL(url, location.href).pathname;
    super(`${method} ${path} failed: ${status} ${statusText}${body ? ` — ${body.trim()}` : ''}`);
    this.status = status;
    this.body = body;
  }
}

/**
 * One WHIP (publish) or WHEP (play) session. Construct it right after adding the
 * transceivers to `pc`; start() creates the offer, POSTs it and applies the answer.
 * Local ICE candidates are buffered until the 201 arrives, then trickled in
 * aggregated PATCH requests (one in flight at a time).
 */
export class WhipSession {
  constructor(pc, endpoint, { token = null, onPost = null, log = () => {} } = {}) {
    this.pc = pc;
    this.endpoint = new URL(endpoint, location.href).href;
    this.token = token;
    this.onPost = onPost;
    this.log = log;
    this.url = null;        // session resource (Location), absolute
    this.etag = null;
    this.iceServers = [];
    this.postStartedAt = null;
    this.pending = [];      // RTCIceCandidate objects not yet sent
    this.gatheringDone = false;
    this.endSent = false;
    this.trickle = true;    // becomes false if the server rejects PATCH (405/501)
    this.inFlight = false;
    this.restarting = false; // an ICE restart PATCH is in progress: trickle waits
    this.timer = null;
    this.closed = false;
    this.onCandidate = (ev) => {
      if (ev.candidate && ev.candidate.candidate) this.pending.push(ev.candidate);
      else if (!ev.candidate) this.gatheringDone = true;
      else return; // empty candidate string: end of a generation, nothing to send
      this.schedule();
    };
    this.onGathering = () => {
      if (pc.iceGatheringState === 'complete') { this.gatheringDone = true; this.schedule(); }
    };
    pc.addEventListener('icecandidate', this.onCandidate);
    pc.addEventListener('icegatheringstatechange', this.onGathering);
  }

  headers(extra = {}) {
    return this.token ? { ...extra, Authorization: `Bearer ${this.token}` } : extra;
  }

  async start() {
    const pc = this.pc;
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.postStartedAt = performance.now();
    this.onPost?.(this.postStartedAt);
    this.log(`POST ${new URL(this.endpoint).pathname}`);
    const res = await fetch(this.endpoint, {
      method: 'POST',
      headers: this.headers({ 'Content-Type': 'application/sdp' }),
      body: offer.sdp, // sent immediately; candidates follow via trickle
    });
    const body = await res.text();
    if (res.status !== 201) throw new HttpError('POST', this.endpoint, res.status, res.statusText, body);
    const loc = res.headers.get('Location');
    if (!loc) throw new Error('201 response has no Location header');
    this.url = new URL(loc, res.url || this.endpoint).href;
    this.etag = res.headers.get('ETag');
    this.log(`201 Created, session ${new URL(this.url).pathname}${this.etag ? `, ETag ${this.etag}` : ''}`);
    if (this.closed) { await this.stop(); throw new Error('stopped while connecting'); }

    this.iceServers = iceServersFromLinks(parseLinkHeader(res.headers.get('Link')));
    if (this.iceServers.length) {
      this.log(`ICE servers from Link: ${this.iceServers.map((s) => s.urls).join(', ')}`);
      try {
        pc.setConfiguration({ ...pc.getConfiguration(), iceServers: this.iceServers });
      } catch (e) {
        this.log(`setConfiguration failed: ${e.message}`);
      }
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
    this.schedule(0);
    return this.url;
  }

  schedule(delay = 20) {
    if (!this.url || !this.trickle || this.closed || this.timer || this.inFlight || this.restarting) return;
    this.timer = setTimeout(() => { this.timer = null; this.flush(); }, delay);
  }

  sdpFragment(candidates, end) {
    const sdp = this.pc.localDescription?.sdp || '';
    const attr = (name) => (new RegExp(`^a=${name}:(.*)$`, 'm').exec(sdp)?.[1] || '').trim();
    const firstMid = attr('mid') || '0';
    const byMid = new Map();
    for (const c of candidates) {
      const mid = c.sdpMid ?? firstMid;
      if (!byMid.has(mid)) byMid.set(mid, []);
      byMid.get(mid).push(c.candidate);
    }
    if (byMid.size === 0) byMid.set(firstMid, []);
    const lines = [`a=ice-ufrag:${attr('ice-ufrag')}`, `a=ice-pwd:${attr('ice-pwd')}`];
    for (const [mid, list] of byMid) {
      lines.push('m=audio 9 UDP/TLS/RTP/SAVPF 0', `a=mid:${mid}`, ...list.map((c) => `a=${c}`));
      if (end) lines.push('a=end-of-candidates');
    }
    return lines.join('\r\n') + '\r\n';
  }

  async flush() {
    if (this.inFlight || this.closed || !this.trickle || !this.url || this.restarting) return;
    const candidates = this.pending.splice(0);
    const end = this.gatheringDone && !this.endSent;
    if (!candidates.length && !end) return;
    if (end) this.endSent = true;
    this.inFlight = true;
    try {
      const headers = { 'Content-Type': 'application/trickle-ice-sdpfrag' };
      if (this.etag) headers['If-Match'] = this.etag;
      const res = await fetch(this.url, {
        method: 'PATCH', headers: this.headers(headers), body: this.sdpFragment(candidates, end),
      });
      if (res.status === 405 || res.status === 501) {
        this.trickle = false;
        this.log(`trickle not supported by server (${res.status})`);
      } else if (res.status !== 204) {
        const text = await res.text();
        this.log(`warning: ${new HttpError('PATCH', this.url, res.status, res.statusText, text).message}`);
      } else {
        this.log(`PATCH: ${candidates.length} candidate(s)${end ? ' + end-of-candidates' : ''}`);
      }
    } catch (e) {
      this.log(`warning: PATCH error: ${e.message}`);
    } finally {
      this.inFlight = false;
      if (this.pending.length || (this.gatheringDone && !this.endSent)) this.schedule();
    }
  }

  /**
   * ICE restart (RFC 9725 §4.3.2): new local credentials go out in a PATCH with
   * `If-Match: "*"`; the server's 200 fragment (its new credentials and candidates) is
   * applied as a modified answer. Resolves to the new ETag.
   */
  async restartIce() {
    const pc = this.pc;
    if (!this.url) throw new Error('no session to restart');
    // Candidates of the new ICE session wait for its ETag (a trickle PATCH carrying the old
    // one would be refused with 412 and the candidates lost).
    this.restarting = true;
    const ufragOf = (sdp) => /^a=ice-ufrag:(.*)$/m.exec(sdp || '')?.[1]?.trim();
    const oldUfrag = ufragOf(pc.localDescription?.sdp);
    try {
      await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
      // Unsent candidates of the old ICE session are meaningless in the new one.
      this.pending = this.pending.filter((c) => !oldUfrag || c.usernameFragment !== oldUfrag);
      this.gatheringDone = false;
      this.endSent = false;
      const res = await fetch(this.url, {
        method: 'PATCH',
        headers: this.headers({ 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': '*' }),
        body: this.sdpFragment([], false),
      });
      const text = await res.text();
      if (res.status !== 200) throw new HttpError('PATCH', this.url, res.status, res.statusText, text);
      this.etag = res.headers.get('ETag');
      await this.applyRestartAnswer(text);
    } finally {
      this.restarting = false;
    }
    this.log(`ICE restart: 200, new ETag ${this.etag}`);
    this.schedule(0);
    return this.etag;
  }

  /** Applies the server's ICE-restart fragment as a modified remote answer. */
  async applyRestartAnswer(text) {
    const pc = this.pc;
    const attr = (name) => (new RegExp(`^a=${name}:(.*)$`, 'm').exec(text)?.[1] || '').trim();
    const candidates = text.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:'));
    const lines = [];
    for (const line of pc.remoteDescription.sdp.split(/\r?\n/)) {
      if (line.startsWith('a=candidate:') || line === 'a=end-of-candidates') continue;
      if (line.startsWith('a=ice-ufrag:')) { lines.push(`a=ice-ufrag:${attr('ice-ufrag')}`); continue; }
      if (line.startsWith('a=ice-pwd:')) {
        lines.push(`a=ice-pwd:${attr('ice-pwd')}`, ...candidates, 'a=end-of-candidates');
        continue;
      }
      lines.push(line);
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: lines.join('\r\n') });
  }

  /** Ends the session: DELETE the resource (if any). Does not close the pc. */
  async stop() {
    this.closed = true;
    clearTimeout(this.timer);
    this.pc.removeEventListener('icecandidate', this.onCandidate);
    this.pc.removeEventListener('icegatheringstatechange', this.onGathering);
    if (!this.url) return;
    const url = this.url;
    this.url = null;
    try {
      const res = await fetch(url, { method: 'DELETE', headers: this.headers(), keepalive: true });
      this.log(`DELETE ${new URL(url).pathname}: ${res.status}`);
    } catch (e) {
      this.log(`DELETE failed: ${e.message}`);
    }
  }
}

/** Reads RTP stats of `type` ('inbound-rtp' | 'outbound-rtp'), keyed by kind, codec resolved. */
export async function rtpStats(pc, type) {
  const out = {};
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type !== type) return;
    const kind = s.kind || s.mediaType;
    const bytes = (r) => (r ? r.bytesSent ?? r.bytesReceived ?? 0 : -1);
    if (bytes(s) <= bytes(out[kind])) return; // keep the busiest stream per kind
    const codec = s.codecId ? report.get(s.codecId) : null;
    out[kind] = { ...s, codec: codec ? codec.mimeType.replace(/^\w+\//, '') : null };
  });
  return out;
}

// ---- small page helpers ----------------------------------------------------

export const $ = (sel) => document.querySelector(sel);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Query parameters with defaults: params({stream: 'demo'}). */
export function params(defaults = {}) {
  const q = new URLSearchParams(location.search);
  const out = { ...defaults };
  for (const [k, v] of q) if (v !== '') out[k] = v;
  return out;
}

/** Appends timestamped lines to a <pre>; also mirrors to the console. */
export function logger(pre) {
  return (msg) => {
    console.log('[gatehouse]', msg);
    const t = new Date().toLocaleTimeString();
    pre.textContent = `${t}  ${msg}\n${pre.textContent}`.slice(0, 8000);
  };
}

const show = (v) => (v === undefined || v === null || v === '' ? '—' : String(v));

/** Fills a <tbody> with one row per field: [label, (stats) => value] × columns (kinds). */
export function renderStats(tbody, fields, byKind, kinds = ['video', 'audio']) {
  tbody.replaceChildren(...fields.map(([label, get]) => {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.textContent = label;
    tr.append(th, ...kinds.map((k) => {
      const td = document.createElement('td');
      td.textContent = byKind[k] ? show(get(byKind[k])) : '—';
      return td;
    }));
    return tr;
  }));
}

export const fmtBytes = (n) =>
  n == null ? null : n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(2)} MiB`;
export const fmtRes = (s) => (s.frameWidth ? `${s.frameWidth}×${s.frameHeight}` : null);
