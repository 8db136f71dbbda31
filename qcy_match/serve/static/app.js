// The broker's page: fill the filters, send the need to v1/match, show results with their reasons, keep a shortlist
// and download it through v1/shortlist:export (the server writes the spreadsheet and escapes formulas).
// URLs are relative so the page works behind a reverse proxy under any path prefix.
"use strict";

const INDUSTRY = { "小类": "小类一致", "中类": "中类一致", "大类": "大类一致", "门类": "门类一致",
                   none: "行业不同", unknown: "行业未知" };
const REGION = { city: "同城", group: "同一区域", none: "地区不同", unknown: "地区未知" };
const shortlist = new Map();
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const token = $("token").value.trim() || sessionStorage.getItem("qcy-token") || "";
  if (token) { h.Authorization = "Bearer " + token; sessionStorage.setItem("qcy-token", token); }
  return h;
}

function status(text, error) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function errorText(resp) {
  let detail = "";
  try { detail = (await resp.json()).error || ""; } catch (e) { /* not JSON */ }
  if (resp.status === 401) return "需要有效的访问令牌（在“访问令牌”中填写）。";
  if (resp.status === 403) return "令牌权限不足：" + detail;
  if (resp.status === 422) return "输入有误：" + detail;
  if (resp.status === 429) return "请求过于频繁，请稍后再试。";
  return "服务出错（" + resp.status + "）" + (detail ? "：" + detail : "");
}

function checks(containerId, values, name) {
  const box = $(containerId);
  for (const v of values) {
    box.append(el("label", {}, el("input", { type: "checkbox", name: name, value: v }), v));
  }
}

async function loadOptions() {
  const resp = await fetch("v1/options");
  if (!resp.ok) return;
  const o = await resp.json();
  for (const c of o.chains) $("f-chain").append(el("option", { value: c.name }, c.name));
  const region = $("f-region");
  for (const g of o.regions.groups) region.append(el("option", { value: g }, g + "（区域）"));
  for (const c of o.regions.cities) region.append(el("option", { value: c.name }, c.name));
  for (const n of o.industries) $("industry-list").append(el("option", { value: n.code }, n.code + " " + n.name));
  checks("f-maturity", o.maturity, "maturity");
  checks("f-transfer", o.transfer_modes, "transfer_mode");
}

function filters() {
  const f = {};
  if ($("f-chain").value) f.chain = $("f-chain").value;
  if ($("f-industry").value.trim()) f.industry = $("f-industry").value.trim().split(/[,，\s]+/).filter(Boolean);
  if ($("f-region").value) f.region = $("f-region").value;
  for (const name of ["maturity", "transfer_mode"]) {
    const picked = [...document.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value);
    if (picked.length) f[name] = picked;
  }
  return f;
}

function keywords(text) {
  return (text || "").split(";").map((s) => s.trim()).filter(Boolean).map((s) => s.split(":")[0]);
}

function badge(text, cls) { return el("span", { class: cls }, text); }

function renderResult(row) {
  const kws = keywords(row.shared_keywords);
  const ind = row.industry_agreement, reg = row.region_agreement;
  const add = el("button", { type: "button", class: "secondary add" }, shortlist.has(row.achievement_id) ? "已加入" : "加入候选清单");
  add.addEventListener("click", () => { shortlist.set(row.achievement_id, row); add.textContent = "已加入"; renderShortlist(); });
  return el("li", { class: "result", "data-id": row.achievement_id },
    el("h3", {}, el("span", { class: "rank" }, row.rank + "."), row.achievement_title,
       el("span", { class: "score" }, "匹配度 " + Number(row.score).toFixed(3))),
    el("div", { class: "badges" },
       badge(INDUSTRY[ind] || ind, ["小类", "中类", "大类"].includes(ind) ? "good" : ind === "门类" ? "weak" : ""),
       badge(REGION[reg] || reg, reg === "city" ? "good" : reg === "group" ? "weak" : "")),
    el("div", { class: "kw" }, "共同关键词：", ...(kws.length ? kws.map((k) => el("b", {}, k)) : ["—"])),
    el("div", { class: "meta" }, [row.achievement_id, row.achievement_industry, row.achievement_region,
       row.achievement_maturity, row.achievement_transfer_mode, row.achievement_owner].filter(Boolean).join(" · ")),
    add);
}

function renderShortlist() {
  const list = $("shortlist");
  list.replaceChildren();
  for (const [id, row] of shortlist) {
    const rm = el("button", { type: "button", title: "移除" }, "×");
    rm.addEventListener("click", () => { shortlist.delete(id); renderShortlist(); });
    list.append(el("li", { "data-id": id }, el("span", {}, row.achievement_title), rm));
  }
  $("shortlist-count").textContent = "(" + shortlist.size + ")";
  $("download-xlsx").disabled = $("download-csv").disabled = shortlist.size === 0;
}

async function match(event) {
  event.preventDefault();
  const need = { id: "need", title: $("title").value.trim(), description: $("description").value.trim() };
  if ($("need-industry").value.trim()) need.industry = $("need-industry").value.trim();
  if ($("need-region").value.trim()) need.region = $("need-region").value.trim();
  const k = Math.max(1, Math.min(50, parseInt($("k").value, 10) || 10));
  status("匹配中……");
  $("submit").disabled = true;
  try {
    const resp = await fetch("v1/match", { method: "POST", headers: headers(),
      body: JSON.stringify({ queries: [need], k: k, filters: filters(), explain: true }) });
    if (!resp.ok) { status(await errorText(resp), true); return; }
    const rows = (await resp.json()).results[0].matches;
    $("results").replaceChildren(...rows.map(renderResult));
    $("result-count").textContent = "(" + rows.length + ")";
    status(rows.length ? "找到 " + rows.length + " 项匹配成果。" : "没有符合筛选条件的成果。");
  } catch (e) {
    status("无法连接服务：" + e, true);
  } finally {
    $("submit").disabled = false;
  }
}

async function download(format) {
  const resp = await fetch("v1/shortlist:export", { method: "POST", headers: headers(),
    body: JSON.stringify({ rows: [...shortlist.values()], format: format }) });
  if (!resp.ok) { status(await errorText(resp), true); return; }
  const url = URL.createObjectURL(await resp.blob());
  const a = el("a", { href: url, download: "shortlist." + format });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  status("已下载候选清单（" + shortlist.size + " 项）。");
}

$("need-form").addEventListener("submit", match);
$("download-xlsx").addEventListener("click", () => download("xlsx"));
$("download-csv").addEventListener("click", () => download("csv"));
loadOptions();
