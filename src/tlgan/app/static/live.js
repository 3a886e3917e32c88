// tlgan explorer: the face follows a dragged slider (see tlgan/app/live.py).
//
// While a slider's range is dragged with the pointer, its input events are kept from gradio (no server round
// trip per position) and the page draws the face on a canvas over the face image: in "browser" mode with the
// generator exported to ONNX, run by onnxruntime-web, from the latent this script computes exactly as
// tlgan.explore.edit_delta does (locked sliders along their own axes, the others projected off the span of the
// locked axes and rescaled to unit length); in "server" mode by posting the slider values for a JPEG frame, one
// request at a time. On release one input event goes to gradio, which updates the server's state (undo, share
// link, readouts, download) as for any change; the canvas goes once the server's face has loaded.
// A state published with frames: "server" (an uploaded photo, edited at its own size) is dragged with server
// frames in either mode.
// window.tlganLive exposes the mode, the last latent and pixels drawn and the timings (tests, benchmarks).
(() => {
  'use strict';
  const BASE = new URL('.', document.currentScript.src).href;  // .../tlgan-live/
  const RANK_TOL = 1e-6;  // as tlgan.explore: a locked axis adding less than this to the span adds nothing
  const MIN_NORM = 1e-6;  // ... and a move whose projection is shorter cannot be made
  const HIDE_AFTER_MS = 15000;  // the canvas goes at the latest this long after a release
  const live = window.tlganLive = {
    mode: null, ready: false, busy: false, error: null, frames: 0, latent: null, pixels: null, digest: null,
    inputs: 0, firstInput: null, latencies: [], paints: [], renderMs: [],
    reset() {
      this.frames = 0; this.inputs = 0; this.firstInput = null; this.latencies = []; this.paints = []; this.renderMs = [];
    },
  };
  let cfg = null, session = null, drag = null, passing = false, busy = false, pending = null, unpainted = [];
  let hideTimer = null, shown = false;  // shown: the canvas may cover the face (from a press until it is hidden)

  const sliderOf = (name) => document.querySelector(`#tl-slider-${CSS.escape(name)} input[type=range]`);
  const lockOf = (name) => document.querySelector(`#tl-lock-${CSS.escape(name)} input[type=checkbox]`);

  function published() {
    const el = document.querySelector('#tl-live .tl-live-state');
    return el ? JSON.parse(el.dataset.live) : null;
  }

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src; s.onload = resolve; s.onerror = () => reject(new Error(`cannot load ${src}`));
      document.head.appendChild(s);
    });
  }

  // ---------------------------------------------------------------- the latent (browser mode)

  const dot = (a, b) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * b[i]; return s; };
  const norm = (a) => Math.sqrt(dot(a, a));

  function lockedBasis(locked) {
    // an orthonormal basis of the span of the locked axes (Gram-Schmidt, twice, with tlgan's rank tolerance)
    const basis = [];
    const largest = Math.max(1e-12, ...locked.map(norm));
    for (const v of locked) {
      const r = Float64Array.from(v);
      for (let pass = 0; pass < 2; pass++) {
        for (const b of basis) { const c = dot(b, r); for (let i = 0; i < r.length; i++) r[i] -= c * b[i]; }
      }
      const n = norm(r);
      if (n > RANK_TOL * largest) basis.push(r.map((x) => x / n));
    }
    return basis;
  }

  function direction(axis, basis) {
    // unit(P a): the axis projected off the locked span (tlgan.explore.locked_direction); null if nothing is left
    const p = Float64Array.from(axis);
    for (const b of basis) { const c = dot(b, p); for (let i = 0; i < p.length; i++) p[i] -= c * b[i]; }
    const n = norm(p);
    return n < MIN_NORM ? null : p.map((x) => x / n);
  }

  function plan(name) {
    // what stays fixed during a drag of `name`: the latent without it (rest) and its edit direction
    const state = published();
    if (!state || !state.base) return null;
    const names = cfg.names, index = new Map(names.map((n, i) => [n, i]));
    const locks = names.filter((n) => lockOf(n)?.checked);
    const values = Object.fromEntries(names.map((n) => [n, parseFloat(sliderOf(n)?.value ?? '0') || 0]));
    const basis = lockedBasis(locks.map((n) => cfg.axes[index.get(n)]));
    const rest = Float64Array.from(state.base);
    const add = (vec, amount) => { for (let i = 0; i < rest.length; i++) rest[i] += amount * vec[i]; };
    for (const n of locks) if (values[n]) add(cfg.axes[index.get(n)], values[n]);  // held moves, own axes
    for (const n of names) {
      if (n === name || locks.includes(n) || !values[n]) continue;
      const d = direction(cfg.axes[index.get(n)], basis);
      if (!d) return null;  // the server refuses this state too
      add(d, values[n]);
    }
    const dir = direction(cfg.axes[index.get(name)], basis);
    return dir ? {rest, dir, digest: state.digest} : null;
  }

  // ---------------------------------------------------------------- drawing

  function overlay(width, height) {
    // the canvas over the face image: `width` x `height` pixels (the face as drawn), stretched by the browser
    // over the image's picture (as gradio's object-fit: contain places it), so no resampling runs in the page
    const img = document.querySelector('#tl-face img');
    if (!img) return null;
    const parent = img.parentElement;
    let c = document.getElementById('tl-live-canvas');
    if (!c) {
      c = document.createElement('canvas');
      c.id = 'tl-live-canvas';
      Object.assign(c.style, {position: 'absolute', pointerEvents: 'none', zIndex: 5, display: 'none'});
    }
    if (c.parentElement !== parent) {
      if (getComputedStyle(parent).position === 'static') parent.style.position = 'relative';
      parent.appendChild(c);
    }
    const r = img.getBoundingClientRect(), pr = parent.getBoundingClientRect();
    const nw = img.naturalWidth || 1, nh = img.naturalHeight || 1, k = Math.min(r.width / nw, r.height / nh);
    const w = nw * k, h = nh * k;
    Object.assign(c.style, {left: `${r.left - pr.left + (r.width - w) / 2}px`, top: `${r.top - pr.top + (r.height - h) / 2}px`,
                            width: `${w}px`, height: `${h}px`});
    if (c.width !== width || c.height !== height) { c.width = width; c.height = height; }
    return c;
  }

  function paint(source, inputTime) {
    // draw `source` (ImageData or a bitmap) on the overlay now, then wait for the animation frame that shows it
    // (so the next render does not hold it back) and record the latencies of the inputs it answers
    const c = shown ? overlay(source.width, source.height) : null;
    if (!c) return Promise.resolve();  // a late frame after the canvas was hidden does not come back
    const ctx = c.getContext('2d');
    if (source instanceof ImageData) ctx.putImageData(source, 0, 0); else ctx.drawImage(source, 0, 0);
    c.style.display = 'block';
    return new Promise((resolve) => requestAnimationFrame(() => {
      const now = performance.now();
      live.frames += 1; live.paints.push(now);
      unpainted = unpainted.filter((t) => { if (t <= inputTime) { live.latencies.push(now - t); return false; } return true; });
      resolve();
    }));
  }

  async function renderBrowser(latent) {
    const d = cfg.latent_dim, z = new Float32Array(d);
    for (let i = 0; i < d; i++) z[i] = latent[i];
    const t0 = performance.now();
    const out = await session.run({latent: new window.ort.Tensor('float32', z, [1, d])});
    live.renderMs.push(performance.now() - t0);
    const x = out.image.data, [, , h, w] = out.image.dims, plane = h * w;
    const im = new ImageData(w, h), rgb = new Uint8Array(plane * 3);
    for (let p = 0; p < plane; p++) {
      for (let ch = 0; ch < 3; ch++) {
        const v = Math.round((Math.min(1, Math.max(-1, x[ch * plane + p])) + 1) * 127.5);
        im.data[4 * p + ch] = v; rgb[3 * p + ch] = v;
      }
      im.data[4 * p + 3] = 255;
    }
    live.latent = Array.from(z); live.pixels = rgb;
    return im;
  }

  async function renderServer(job) {
    const sliders = Object.fromEntries(cfg.names.map((n) => [n, parseFloat(sliderOf(n)?.value ?? '0') || 0]));
    sliders[job.name] = job.value;
    const r = await fetch(new URL(cfg.frame, BASE), {method: 'POST', headers: {'Content-Type': 'application/json'},
                                           body: JSON.stringify({digest: job.digest, sliders})});
    if (!r.ok) throw new Error((await r.json()).error);
    live.digest = r.headers.get('X-State');
    return createImageBitmap(await r.blob());
  }

  async function pump() {
    // render the newest position; positions that arrive meanwhile replace each other (stale ones are dropped)
    if (busy || !pending) return;
    busy = live.busy = true;
    while (pending) {
      const job = pending; pending = null;
      try {
        let source;
        if (!job.server) {
          const z = job.plan.rest.map((x, i) => x + job.value * job.plan.dir[i]);
          source = await renderBrowser(z);
        } else {
          source = await renderServer(job);
        }
        await paint(source, job.time);
      } catch (e) {
        live.error = String(e);
      }
    }
    busy = live.busy = false;
  }

  // ---------------------------------------------------------------- the drag

  function hide() {
    clearTimeout(hideTimer);
    if (drag) return;
    shown = false;
    const c = document.getElementById('tl-live-canvas');
    if (c) c.style.display = 'none';
  }

  function onInput(e) {
    // on the dragged range itself: gradio (listening above it) does not hear this input; the canvas follows
    if (passing || !drag || e.target !== drag.range) return;
    e.stopPropagation();
    const value = parseFloat(e.target.value), time = performance.now();
    live.inputs += 1; unpainted.push(time);
    if (live.firstInput === null) live.firstInput = time;
    if (!drag.server && !drag.plan) return;
    pending = {name: drag.name, value, time, plan: drag.plan, digest: drag.digest, server: drag.server};
    pump();
  }

  function onDown(e) {
    const range = e.target;
    if (!(range instanceof HTMLInputElement) || range.type !== 'range' || range.disabled || e.button !== 0) return;
    const row = range.closest('[id^="tl-slider-"]');
    if (!row || !cfg) return;
    const name = row.id.slice('tl-slider-'.length);
    if (!cfg.names.includes(name)) return;
    if (!range.__tlLive) { range.addEventListener('input', onInput); range.__tlLive = true; }
    const state = published();
    const server = cfg.mode !== 'browser' || state?.frames === 'server';
    drag = {name, range, start: range.value, digest: state?.digest, server,
            plan: server ? null : plan(name)};
    clearTimeout(hideTimer);
    shown = true;
  }

  function onUp() {
    if (!drag) return;
    const d = drag;
    drag = null;
    if (d.range.value === d.start) { hide(); return; }
    const img = document.querySelector('#tl-face img'), before = img?.getAttribute('src');
    const watch = new MutationObserver(() => {
      // the server's answer: the published state changed; hide once the new face (if any) has loaded
      watch.disconnect();
      const now = document.querySelector('#tl-face img');
      if (now && now.getAttribute('src') !== before && !now.complete) now.addEventListener('load', hide, {once: true});
      else setTimeout(hide, 0);
    });
    const box = document.getElementById('tl-live');
    if (box) watch.observe(box, {subtree: true, childList: true, attributes: true, characterData: true});
    hideTimer = setTimeout(() => { watch.disconnect(); hide(); }, HIDE_AFTER_MS);
    passing = true;  // the final value goes to gradio as an ordinary input event
    try { d.range.dispatchEvent(new Event('input', {bubbles: true})); } finally { passing = false; }
  }

  async function init() {
    try {
      cfg = await (await fetch(BASE + 'config.json')).json();
      if (cfg.mode === 'browser') {
        try {
          await loadScript(new URL(cfg.ort + "ort.wasm.min.js", BASE).href);
          const ort = window.ort;
          ort.env.wasm.wasmPaths = new URL(cfg.ort, BASE).href;
          ort.env.wasm.numThreads = 1;
          session = await ort.InferenceSession.create(new URL(cfg.model, BASE).href,
                                                      {executionProviders: ['wasm']});
          await renderBrowser(new Float64Array(cfg.latent_dim));  // warm up
          live.latent = live.pixels = null;
        } catch (e) {
          console.warn('tlgan: drawing dragged faces on the server:', e);
          live.error = String(e); cfg.mode = 'server';
        }
      }
      live.mode = cfg.mode;
      if (cfg.mode === 'off') return;
      document.addEventListener('pointerdown', onDown, true);
      window.addEventListener('pointerup', onUp, true);
      window.addEventListener('pointercancel', onUp, true);
      live.ready = true;
    } catch (e) {
      live.error = String(e);
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
