// Load a page in headless Firefox over Marionette and report what it shows, as one JSON line on stdout:
// `bun test/lib/firefox-check.ts URL SCREENSHOT.png [WAIT_EXPRESSION]`. Run it inside the namespace that
// can reach URL (Marionette listens on TCP 2828 there). The page's errors are read from Firefox's
// console output (devtools.console.stdout.content): the page's console.error calls (a quoted message;
// Firefox's own modules log `console.error: Module: ...`) and errors naming the page's origin. CSP
// violations do not reach that output: the Chromium test checks those.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, shotPath, waitExpr = "true"] = process.argv.slice(2);
const PORT = 2828;
const profile = mkdtempSync(join(tmpdir(), "trellis-firefox-"));
writeFileSync(join(profile, "user.js"), [
  `user_pref("devtools.console.stdout.content", true);`,
  `user_pref("marionette.port", ${PORT});`,
  `user_pref("browser.shell.checkDefaultBrowser", false);`,
  `user_pref("datareporting.policy.dataSubmissionEnabled", false);`,
  `user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);`,
  `user_pref("app.update.enabled", false);`,
  `user_pref("network.captive-portal-service.enabled", false);`,
  // Firefox's own background features log errors of their own offline; keep the console to the page's.
  `user_pref("messaging-system.rsexperimentloader.enabled", false);`,
  `user_pref("app.normandy.enabled", false);`,
  `user_pref("app.shield.optoutstudies.enabled", false);`,
  `user_pref("browser.backup.enabled", false);`,
  `user_pref("browser.backup.scheduled.enabled", false);`,
  `user_pref("datareporting.healthreport.uploadEnabled", false);`,
  `user_pref("extensions.update.enabled", false);`,
  `user_pref("browser.safebrowsing.update.enabled", false);`,
].join("\n"));
const bin = ["firefox-esr", "firefox"].find((b) => Bun.which(b));
if (!bin) throw new Error("firefox is not installed");
const ff = spawn(bin, ["--headless", "--marionette", "--no-remote", "-profile", profile, "--window-size=1280,900", "about:blank"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HOME: profile, MOZ_HEADLESS: "1" } });
let log = "";
ff.stdout!.on("data", (d) => (log += d));
ff.stderr!.on("data", (d) => (log += d));

// Marionette frames: "<length>:<json>"; commands [0, id, name, params], answers [1, id, error, result].
let buf = Buffer.alloc(0);
const waiters: ((v: unknown) => void)[] = [];
let sock: Awaited<ReturnType<typeof Bun.connect>> | undefined;
for (let i = 0; i < 300 && !sock; i++) {
  try {
    sock = await Bun.connect({
      hostname: "127.0.0.1",
      port: PORT,
      socket: {
        data(_s, d) {
          buf = Buffer.concat([buf, Buffer.from(d)]);
          for (;;) {
            const i = buf.indexOf(58);
            if (i < 0) return;
            const n = Number(buf.subarray(0, i).toString());
            if (buf.length < i + 1 + n) return;
            const msg = JSON.parse(buf.subarray(i + 1, i + 1 + n).toString());
            buf = buf.subarray(i + 1 + n);
            waiters.shift()?.(msg);
          }
        },
      },
    });
  } catch {
    await Bun.sleep(200);
  }
}
if (!sock) throw new Error(`Marionette did not listen: ${log.slice(-2000)}`);
const next = () => new Promise<any>((r) => waiters.push(r));
await next(); // the greeting
let id = 0;
async function cmd(name: string, params: object = {}): Promise<any> {
  const s = JSON.stringify([0, ++id, name, params]);
  const p = next();
  sock!.write(`${Buffer.byteLength(s)}:${s}`);
  const [, , err, res] = await p;
  if (err) throw new Error(`${name}: ${JSON.stringify(err)}`);
  return res;
}

try {
  await cmd("WebDriver:NewSession", { capabilities: {} });
  await cmd("WebDriver:Navigate", { url });
  const end = Date.now() + 15000;
  while (Date.now() < end && !(await cmd("WebDriver:ExecuteScript", { script: `return !!(${waitExpr})`, args: [] })).value) await Bun.sleep(100);
  const shown = (await cmd("WebDriver:ExecuteScript", {
    script: `return {
      rows: [...document.querySelectorAll("#peers-table tbody tr")].map((tr) => ({ id: tr.dataset.peer, name: tr.children[0].firstChild.textContent, path: tr.children[2].innerText.trim(), dataPath: tr.dataset.path })),
      nodes: [...document.querySelectorAll("#mesh .node")].map((g) => g.dataset.key),
      edges: [...document.querySelectorAll("#edges path")].map((p) => ({ key: p.dataset.edge, stroke: getComputedStyle(p).stroke })),
      live: document.getElementById("live-text").textContent,
    }`,
    args: [],
  })).value;
  const shot = await cmd("WebDriver:TakeScreenshot", { full: true });
  writeFileSync(shotPath, Buffer.from(shot.value, "base64"));
  await cmd("Marionette:Quit", { flags: ["eForceQuit"] }).catch(() => {});
  const origin = new URL(url).origin;
  const errors = log.split("\n").filter((l) => (l.includes(origin) && /error|Content-Security-Policy|blocked/i.test(l)) || l.startsWith('console.error: "'));
  console.log(JSON.stringify({ ...shown, errors }));
} finally {
  sock.end();
  ff.kill("SIGKILL");
  rmSync(profile, { recursive: true, force: true });
}
process.exit(0);
