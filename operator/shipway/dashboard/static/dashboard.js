// Shipway dashboard: live step tree and logs. Served as a file (the CSP allows no inline
// script); every text goes in through textContent, never as HTML.
"use strict";

const SGR = /\x1b\[([0-9;]*)m/g;
const OTHER_ESCAPES = /\x1b\[[0-9;?]*[A-Za-z]/g;

// One log line as spans coloured by its ANSI SGR codes (30-37, 90-97 fg; 1 bold; 0 reset).
function ansiLine(text, state) {
  const frag = document.createDocumentFragment();
  let last = 0;
  const emit = (chunk) => {
    if (!chunk) return;
    const span = document.createElement("span");
    const classes = [];
    if (state.fg !== null) classes.push("ansi-fg-" + state.fg);
    if (state.bold) classes.push("ansi-bold");
    if (classes.length) span.className = classes.join(" ");
    span.textContent = chunk.replace(OTHER_ESCAPES, "");
    frag.appendChild(span);
  };
  text.replace(SGR, (match, codes, offset) => {
    emit(text.slice(last, offset));
    last = offset + match.length;
    for (const raw of (codes || "0").split(";")) {
      const code = Number(raw || "0");
      if (code === 0) { state.fg = null; state.bold = false; }
      else if (code === 1) state.bold = true;
      else if (code === 22) state.bold = false;
      else if (code === 39) state.fg = null;
      else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) state.fg = code;
    }
    return match;
  });
  emit(text.slice(last));
  frag.appendChild(document.createTextNode("\n"));
  return frag;
}

function follow(section) {
  if (section.dataset.streaming) return;
  section.dataset.streaming = "1";
  const pre = section.querySelector(".logtext");
  const state = { fg: null, bold: false };
  pre.textContent = "";
  const source = new EventSource(section.dataset.events);
  source.onmessage = (event) => {
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
    pre.appendChild(ansiLine(event.data, state));
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  };
  source.addEventListener("end", () => {
    source.close();
    section.dataset.ended = "1";
  });
  source.onerror = () => {
    source.close();
    if (!section.dataset.ended) {
      // reconnecting would replay the log: start again after a pause
      setTimeout(() => { delete section.dataset.streaming; follow(section); }, 2000);
    }
  };
}

function setPhase(el, phase) {
  el.className = "phase phase-" + phase;
  el.textContent = phase;
}

function startLogs() {
  for (const section of document.querySelectorAll("section.log")) {
    const row = document.querySelector('tr.step[data-step="' + CSS.escape(section.dataset.step) + '"]');
    if (row && row.dataset.phase !== "Pending" && row.dataset.phase !== "Skipped") follow(section);
  }
}

async function poll(run) {
  try {
    const response = await fetch(run.dataset.status, { headers: { Accept: "application/json" } });
    if (response.ok) {
      const status = await response.json();
      setPhase(document.getElementById("run-phase"), status.phase);
      document.getElementById("run-duration").textContent = status.duration;
      for (const step of status.steps) {
        const row = document.querySelector('tr.step[data-step="' + CSS.escape(step.id) + '"]');
        if (!row) continue;
        row.dataset.phase = step.phase;
        setPhase(row.querySelector(".phase"), step.phase);
        row.querySelector(".duration").textContent = step.duration;
        row.querySelector(".waited").textContent = step.waited;
      }
      for (const group of status.groups) {
        const row = document.querySelector('tr.group[data-group="' + CSS.escape(group.id) + '"]');
        if (row) row.querySelector(".phase").className = "phase phase-" + group.phase;
      }
      startLogs();
      if (status.finished) {
        run.dataset.finished = "true";
        const cancel = document.getElementById("cancel");
        if (cancel) cancel.closest("form").remove();
        return;
      }
    }
  } catch (error) {
    // the server restarted or the network blinked: try again
  }
  setTimeout(() => poll(run), 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  const run = document.getElementById("run");
  if (!run) return;
  startLogs();
  if (run.dataset.finished !== "true") poll(run);
});
