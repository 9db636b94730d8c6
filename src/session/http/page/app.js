// The page: a series browser over /metrics/find, a time range, and the
// chart as an SVG the server renders (/render?format=svg). Its state is
// the URL fragment: #target=...&from=...&until=...
"use strict";

const $ = (id) => document.getElementById(id);
const state = { target: "", from: "-1d", until: "now", path: "" };

function readHash() {
  const fields = new URLSearchParams(location.hash.slice(1));
  state.target = fields.get("target") || "";
  state.from = fields.get("from") || "-1d";
  state.until = fields.get("until") || "now";
  // The browser opens at the chosen path's parent, or above its first
  // glob; a function call starts at the top.
  if (state.target && !state.target.includes("(")) {
    const nodes = state.target.split(".").slice(0, -1);
    const glob = nodes.findIndex((node) => /[*?{[]/.test(node));
    state.path = (glob < 0 ? nodes : nodes.slice(0, glob)).join(".");
  }
}

function writeHash() {
  const fields = new URLSearchParams();
  if (state.target) fields.set("target", state.target);
  fields.set("from", state.from);
  fields.set("until", state.until);
  history.replaceState(null, "", "#" + fields.toString());
}

async function browse(path) {
  state.path = path;
  const query = path ? path + ".*" : "*";
  const crumbs = $("crumbs");
  crumbs.textContent = "";
  const parts = path ? path.split(".") : [];
  const root = document.createElement("a");
  root.textContent = "all";
  root.onclick = () => browse("");
  crumbs.append(root);
  parts.forEach((part, i) => {
    const link = document.createElement("a");
    link.textContent = part;
    link.onclick = () => browse(parts.slice(0, i + 1).join("."));
    crumbs.append(" . ", link);
  });
  const list = $("nodes");
  list.textContent = "";
  let nodes = [];
  try {
    const answer = await fetch("/metrics/find?query=" + encodeURIComponent(query));
    nodes = answer.ok ? await answer.json() : [];
  } catch (e) {
    nodes = [];
  }
  $("browser-note").textContent = nodes.length ? "" : "No series here yet.";
  for (const node of nodes) {
    const item = document.createElement("li");
    item.textContent = node.text;
    item.title = node.id;
    item.className = node.leaf ? "leaf" : "branch";
    if (node.leaf && node.id === state.target) item.classList.add("selected");
    item.onclick = () => (node.leaf ? choose(node.id) : browse(node.id));
    list.append(item);
  }
}

function choose(target) {
  state.target = target;
  $("target").value = target;
  for (const item of $("nodes").children) {
    item.classList.toggle("selected", item.title === target);
  }
  show();
}

function show() {
  writeHash();
  $("from").value = state.from;
  $("until").value = state.until;
  for (const button of document.querySelectorAll("#range button[data-from]")) {
    button.classList.toggle("active", button.dataset.from === state.from && state.until === "now");
  }
  const graph = $("graph");
  if (!state.target) {
    graph.style.display = "none";
    $("empty").style.display = "";
    return;
  }
  const width = Math.max(300, Math.min(2000, $("chart").clientWidth - 16));
  const height = Math.round(width * 0.45);
  const fields = new URLSearchParams({
    target: state.target, from: state.from, until: state.until,
    format: "svg", width: String(width), height: String(height),
  });
  graph.src = "/render?" + fields.toString();
  graph.alt = state.target;
  graph.style.display = "";
  $("empty").style.display = "none";
  fields.set("format", "json");
  const links = $("links");
  links.textContent = "";
  for (const format of ["json", "csv", "svg"]) {
    fields.set("format", format);
    const link = document.createElement("a");
    link.href = "/render?" + fields.toString();
    link.textContent = format;
    links.append(link, " ");
  }
}

$("target-form").onsubmit = (event) => {
  event.preventDefault();
  choose($("target").value.trim());
};
$("range-form").onsubmit = (event) => {
  event.preventDefault();
  state.from = $("from").value.trim() || "-1d";
  state.until = $("until").value.trim() || "now";
  show();
};
for (const button of document.querySelectorAll("#range button[data-from]")) {
  button.onclick = () => {
    state.from = button.dataset.from;
    state.until = "now";
    show();
  };
}
window.onhashchange = () => {
  readHash();
  $("target").value = state.target;
  show();
};

readHash();
$("target").value = state.target;
browse(state.path);
show();
