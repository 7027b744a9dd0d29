// Drives the dashboard in Debian's chromium; run by dashboard_test.go,
// which passes its parameters as JSON in DASHBOARD_TEST and reads one JSON
// line of named checks from stdout.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const P = JSON.parse(process.env.DASHBOARD_TEST || "{}");
const VIEWS = ["overview", "routes", "upstreams", "consumers"];
const checks = [];
const consoleErrors = [];

function check(name, ok, detail = "") {
  checks.push({ name, ok: Boolean(ok), detail });
}

// waitFor polls fn (in Node) until it returns a truthy value or the
// deadline passes; generous deadlines, no fixed sleeps.
async function waitFor(fn, ms = 15000, every = 200) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, every));
  }
  return last;
}

async function run(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
  } catch (e) {
    check(name, false, `${e.message}`.split("\n").slice(0, 6).join("\n"));
  }
  const c = checks.find((x) => x.name === name);
  if (c) c.detail += ` [${((Date.now() - t0) / 1000).toFixed(1)} s]`;
}

// adminCall calls the admin API from Node (not the page) with the token.
async function adminCall(method, path) {
  const r = await fetch(`${P.admin}/api/v1/${path}`, { method, headers: { Authorization: `Bearer ${P.token}` } });
  return { status: r.status, body: await r.text() };
}

async function control(path) {
  const r = await fetch(`${P.control}/${path}`, { method: "POST" });
  const body = await r.text();
  if (r.status >= 300) throw new Error(`control ${path}: ${r.status} ${body}`);
  return body;
}

async function show(page, view) {
  await page.click(`a[data-nav="${view}"]`);
  await page.waitForSelector(`#view-${view}:not([hidden])`, { timeout: 10000 });
}

async function setTheme(page, dark) {
  const pressed = async () => (await page.getAttribute("#theme", "aria-pressed")) === "true";
  if ((await pressed()) !== dark) await page.click("#theme");
  if ((await pressed()) !== dark) throw new Error(`theme toggle did not switch to ${dark ? "dark" : "light"}`);
}

const browser = await chromium.launch({
  executablePath: P.chromium,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let fatal = "";
try {
  // bypassCSP lets the test inject axe-core; the dashboard's own code
  // runs under its Content-Security-Policy as usual. Reduced motion turns
  // the dashboard's colour transitions off, so nothing needs waiting for
  // before a screenshot or a contrast check.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true, colorScheme: "light", reducedMotion: "reduce" });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(`uncaught: ${e.message}`));

  await run("page loads and asks for the token", async () => {
    await page.goto(`${P.admin}/ui/`);
    await page.waitForSelector("#login:not([hidden])");
    const focused = await page.evaluate(() => document.activeElement?.id);
    await page.fill("#token", P.token);
    await page.press("#token", "Enter");
    await page.waitForSelector("#view-overview:not([hidden])");
    await page.waitForFunction(() => document.getElementById("cfg-hash").textContent.length > 8);
    const url = page.url();
    const stored = await page.evaluate(() => Object.keys(sessionStorage));
    check("page loads and asks for the token", focused === "token" && !url.includes(P.token) && stored.length === 1,
      `focus on ${focused}; sessionStorage keys ${stored}; URL ${url}`);
  });

  await run("shows the configured routes", async () => {
    await show(page, "routes");
    for (const r of P.routes) await page.waitForSelector(`#route-list li[data-route="${r}"] h3`);
    const names = await page.$$eval("#route-list li[data-route] h3", (hs) => hs.map((h) => h.textContent));
    const missing = P.routes.filter((r) => !names.includes(r));
    check("shows the configured routes", missing.length === 0, `shown: ${names.join(", ")}; missing: ${missing.join(", ")}`);
  });

  await run("route search filters", async () => {
    await page.fill("#route-filter", "orders");
    const visible = await page.$$eval("#route-list li[data-route]", (ls) => ls.filter((l) => !l.hidden).map((l) => l.dataset.route));
    await page.fill("#route-filter", "");
    const all = await page.$$eval("#route-list li[data-route]", (ls) => ls.filter((l) => !l.hidden).length);
    check("route search filters", visible.length === 1 && visible[0] === "orders-api" && all === P.routes.length,
      `"orders" shows ${visible.join(", ")}; empty filter shows ${all}`);
  });

  await run("routes show auth, cache and transform policies", async () => {
    await show(page, "routes");
    const chips = await page.$$eval(`#route-list li[data-route="${P.policyRoute}"] .chip`, (cs) => cs.map((c) => c.textContent));
    const has = (re) => chips.some((c) => re.test(c));
    check("routes show auth, cache and transform policies",
      has(/^auth api_key/) && has(/^cache /) && has(/transform/) && has(/^rate limits$/) && has(/^quotas$/),
      `${P.policyRoute}: ${chips.join(" | ")}`);
  });

  await run("charts move while traffic runs", async () => {
    await show(page, "overview");
    const read = () => page.evaluate(() => ({
      rps: document.querySelector("#chart-rps polyline").getAttribute("points"),
      p99: document.querySelector("#chart-lat polyline.s2").getAttribute("points"),
      kpi: document.getElementById("kpi-rps").textContent,
    }));
    // Some point above the baseline (y < 100 in the chart's space).
    const drawn = (pts) => pts.split(" ").some((p) => Number(p.split(",")[1]) < 99.5);
    const first = await waitFor(async () => { const r = await read(); return drawn(r.rps) ? r : null; }, 20000);
    if (!first) throw new Error("the requests/s chart never drew traffic");
    const second = await waitFor(async () => { const r = await read(); return r.rps !== first.rps ? r : null; }, 20000);
    check("charts move while traffic runs", Boolean(second) && drawn(second.p99) && Number(second.kpi) > 0,
      second ? `requests/s now ${second.kpi}; the polyline changed between two polls` : "the requests/s polyline did not change in 20 s");
  });

  await run("explain box works with the keyboard alone", async () => {
    // From the top of the page: Tab to the Routes link, Enter, Tab to the
    // URL field, type, Enter.
    await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0); });
    await page.mouse.move(0, 0);
    const active = () => page.evaluate(() => {
      const a = document.activeElement;
      return a ? (a.id || a.dataset.nav || a.tagName) : "";
    });
    let steps = 0;
    while ((await active()) !== "routes" && steps++ < 15) await page.keyboard.press("Tab");
    if ((await active()) !== "routes") throw new Error("Tab never reached the Routes link");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#view-routes:not([hidden])");
    steps = 0;
    while ((await active()) !== "ex-url" && steps++ < 15) await page.keyboard.press("Tab");
    if ((await active()) !== "ex-url") throw new Error(`Tab never reached the URL field (at ${await active()})`);
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    await page.keyboard.type(P.explainURL);
    await page.keyboard.press("Tab");
    await page.keyboard.type("X-Demo: 1");
    await page.keyboard.press("Shift+Tab");
    await page.keyboard.press("Enter");
    await page.waitForFunction((r) => document.getElementById("explain-out").textContent.includes(r), P.explainRoute);
    const text = await page.textContent("#explain-out");
    check("explain box works with the keyboard alone", text.includes("matched") && outline !== "none",
      `focus outline ${outline}; answer: ${text.slice(0, 200)}`);
  });

  await run("target goes unhealthy when its upstream stops", async () => {
    await show(page, "upstreams");
    await page.evaluate(() => { window.__sameDocument = true; });
    const health = (url) => page.evaluate((u) => {
      const row = [...document.querySelectorAll("#upstream-list tr[data-target]")].find((r) => r.dataset.target === u);
      return row ? row.querySelector('td[data-label="Health"]').textContent : "";
    }, url);
    const before = await waitFor(async () => ((await health(P.stoppedURL)) === "healthy" ? "healthy" : ""), 15000);
    if (!before) throw new Error(`users-b never showed healthy (shows "${await health(P.stoppedURL)}")`);
    const r = await fetch(`${P.control}/stop-users-b`, { method: "POST" });
    if (r.status !== 204) throw new Error(`control server answered ${r.status}`);
    const after = await waitFor(async () => {
      const h = await health(P.stoppedURL);
      return h === "unhealthy" || h === "ejected" ? h : "";
    }, 20000);
    const same = await page.evaluate(() => window.__sameDocument === true);
    const other = await health(P.healthyURL);
    check("target goes unhealthy when its upstream stops", after === "unhealthy" && same && other === "healthy",
      `users-b: healthy → ${after || (await health(P.stoppedURL))}; users-a ${other}; same document (no reload): ${same}`);
  });

  await run("consumers shows roles and credential kinds, never secrets", async () => {
    await show(page, "consumers");
    const card = 'li[data-consumer="alice"]';
    await page.waitForSelector(card);
    const text = await page.textContent(card);
    await page.click(`${card} button[aria-controls]`);
    await page.waitForFunction((c) => {
      const q = document.querySelector(`${c} .usage .quota`);
      return q && q.textContent && !q.textContent.includes("Loading");
    }, card);
    const quota = await page.textContent(`${card} .quota`);
    const quotaError = await page.$(`${card} .quota .error`);
    const html = await page.content();
    const leaked = P.secrets.filter((x) => html.includes(x));
    check("consumers shows roles and credential kinds, never secrets",
      text.includes("admin") && text.includes("ops") && text.includes("API key") && leaked.length === 0 && !quotaError,
      `alice: ${text.replace(/\s+/g, " ").slice(0, 160)}; quota: ${quota}; secrets in the page: ${leaked.length}`);
  });

  await run("consumer rate-limit and quota usage move with traffic", async () => {
    // alice's usage box is open (previous check); it refreshes every poll.
    await show(page, "consumers");
    const card = `li[data-consumer="${P.consumer}"]`;
    const expanded = await page.getAttribute(`${card} button[aria-controls]`, "aria-expanded");
    const row = `${card} li[data-limit="${P.limitRow}"]`;
    await page.waitForSelector(row);
    const read = () => page.evaluate(([r, q, ip, rr]) => {
      const el = document.querySelector(r);
      const qe = document.querySelector(q);
      const ipe = document.querySelector(ip);
      const re = document.querySelector(rr);
      const m = el?.querySelector("meter");
      return {
        used: Number(el?.dataset.used ?? -1), remaining: Number(el?.dataset.remaining ?? -1),
        meter: m ? `${m.value}/${m.max} "${m.getAttribute("aria-label")}"` : "",
        text: el?.textContent || "", quota: Number(qe?.dataset.used ?? -1),
        ip: ipe ? `${ipe.dataset.scope}: ${ipe.textContent}` : "",
        route: re ? `${re.dataset.scope} ${re.dataset.used}` : "",
        all: el?.closest(".usage")?.textContent || "",
      };
    }, [row, `${card} li[data-quota="${P.quotaRow}"]`, `${card} li[data-limit="${P.ipLimitRow}"]`, `${card} li[data-limit="${P.routeLimitRow}"]`]);
    const before = await read();
    const sent = JSON.parse(await control("alice-traffic"));
    if (sent.ok !== P.batch) throw new Error(`alice's batch: ${sent.ok} of ${P.batch} answered 200`);
    // The bucket refills about 0.28 requests a second; the batch must
    // show as most of its size, and the quota count exactly.
    const after = await waitFor(async () => {
      const r = await read();
      return r.used >= before.used + P.batch - 3 && r.quota >= before.quota + P.batch &&
        Number(r.route.split(" ")[1]) >= P.batch - 3 ? r : null;
    }, 15000);
    const last = after || await read();
    check("consumer rate-limit and quota usage move with traffic",
      expanded === "true" && Boolean(after) && last.meter.startsWith(`${last.used}/`) && last.text.includes(`${last.used} of`) &&
        last.ip.startsWith("not per consumer") && /not per consumer/i.test(last.ip) &&
        Number(last.route.split(" ")[1]) >= P.batch - 3 && last.route.startsWith("route ") &&
        !/\b(null|undefined|NaN)\b/.test(last.all),
      `rate limit used ${before.used} → ${last.used} (remaining ${last.remaining}; meter ${last.meter}); ` +
        `quota used ${before.quota} → ${last.quota}; ip limit: ${last.ip}; route limit: ${last.route}; button expanded ${expanded}`);
  });

  await run("overview shows top routes and the reload result", async () => {
    await show(page, "overview");
    const tops = (id) => page.$$eval(`#${id} a[data-route]`, (as) => as.map((a) => a.dataset.route));
    const traffic = await waitFor(async () => {
      const t = await tops("top-traffic");
      return P.topRoutes.every((r) => t.includes(r)) ? t : null;
    }, 20000) || await tops("top-traffic");
    const errors = await waitFor(async () => {
      const t = await tops("top-errors");
      return t.includes(P.errorRoute) ? t : null;
    }, 20000) || await tops("top-errors");
    // A failed reload (the file broken on purpose), then a good one.
    await control("break-config");
    const bad = await adminCall("POST", "reload");
    const failed = await waitFor(async () => {
      const t = await page.textContent("#cfg-reload");
      return t.includes("failed") && (await page.$("#cfg-reload pre.error")) ? t : null;
    }, 15000);
    await control("mend-config");
    const good = await adminCall("POST", "reload");
    const ok = await waitFor(async () => {
      const t = await page.textContent("#cfg-reload");
      return t.includes("succeeded") && t.includes("admin api") ? t : null;
    }, 15000);
    check("overview shows top routes and the reload result",
      P.topRoutes.every((r) => traffic.includes(r)) && errors.includes(P.errorRoute) &&
        bad.status === 422 && Boolean(failed) && good.status === 200 && Boolean(ok),
      `top by traffic: ${traffic.join(", ")}; top by errors: ${errors.join(", ")}; ` +
        `broken reload ${bad.status} shown as "${(failed || "").slice(0, 80)}"; good reload ${good.status} shown as "${ok || ""}"`);
  });

  await run("screenshots: light and dark of each view", async () => {
    const saved = [];
    for (const dark of [false, true]) {
      await setTheme(page, dark);
      for (const v of VIEWS) {
        await show(page, v);
        const name = `${v}-${dark ? "dark" : "light"}.png`;
        await page.screenshot({ path: join(P.artifacts, name), fullPage: true });
        saved.push(name);
      }
    }
    await setTheme(page, false);
    const missing = saved.filter((n) => !existsSync(join(P.artifacts, n)));
    check("screenshots: light and dark of each view", saved.length === 8 && missing.length === 0,
      `${saved.length} in ${P.artifacts}${missing.length ? `; missing ${missing.join(", ")}` : ""}`);
  });

  await run("axe-core: no serious or critical violations", async () => {
    await page.addScriptTag({ content: axeSource });
    const found = [];
    const timing = [];
    for (const dark of [false, true]) {
      await setTheme(page, dark);
      for (const v of VIEWS) {
        await show(page, v);
        const ta = Date.now();
        const violations = await page.evaluate(async () => {
          const r = await window.axe.run(document, { resultTypes: ["violations"] });
          return r.violations.filter((x) => x.impact === "serious" || x.impact === "critical")
            .map((x) => `${x.id} (${x.impact}): ${x.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; ")}`);
        });
        timing.push(`${v}: axe ${Date.now() - ta} ms`);
        for (const x of violations) found.push(`${v}/${dark ? "dark" : "light"}: ${x}`);
      }
    }
    await setTheme(page, false);
    check("axe-core: no serious or critical violations", found.length === 0,
      found.length ? found.join("\n") : `8 runs (4 views × light, dark); ${timing.join("; ")}`);
  });

  await run("no horizontal scroll at 320 px", async () => {
    await page.setViewportSize({ width: 320, height: 720 });
    const wide = [];
    for (const v of VIEWS) {
      await show(page, v);
      const m = await page.evaluate(() => {
        const w = document.documentElement.scrollWidth;
        let widest = "";
        if (w > 320) {
          for (const e of document.querySelectorAll("body *")) {
            const r = e.getBoundingClientRect();
            if (r.right > 320.5 && e.offsetParent !== null) { widest = `${e.tagName}#${e.id}.${e.className} right=${r.right}`; break; }
          }
        }
        return { w, widest };
      });
      await page.screenshot({ path: join(P.artifacts, `${v}-320px.png`), fullPage: true });
      if (m.w > 320) wide.push(`${v}: scrollWidth ${m.w} (${m.widest})`);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    check("no horizontal scroll at 320 px", wide.length === 0, wide.join("\n"));
  });
} catch (e) {
  fatal = e.message;
} finally {
  check("no console errors", consoleErrors.length === 0, consoleErrors.slice(0, 10).join("\n"));
  await browser.close();
}
process.stdout.write(`${JSON.stringify({ checks, fatal })}\n`);
