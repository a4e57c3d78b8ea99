// Browser test of the node flow, run by tests/api/e2e.rs after the local node was provisioned
// through the API: log in, see the node active on the Nodes page with the SSH key shown, press
// "Provision again", watch the Ansible output arrive live on the job page, see `succeeded`
// without reloading, find the action on the Audit page and in the node page's history.
import { base, launch, logIn, screenshot, step } from "./common.mjs";

const { ctx, page } = await launch();
try {
  page.on("dialog", (d) => d.accept());

  step("log in");
  await logIn(page, "/nodes");

  step("the node is active and the public key is shown");
  const row = page.locator(`tr[data-node-id="${process.env.PRESSLUFT_NODE_ID}"]`);
  await row.waitFor();
  const status = (await row.locator("[data-test=node-status]").textContent()).trim();
  if (status !== "active") throw new Error(`node status ${status}`);
  const key = await page.textContent("[data-test=public-key]");
  if (!key.startsWith("ssh-ed25519 ")) throw new Error(`public key: ${key}`);
  await screenshot(page, `nodes`);

  step("provision again and land on the job page");
  await row.locator("[data-test=provision]").click();
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  const jobId = page.url().split("/").pop();
  console.log(`JOB ${jobId}`);

  step("Ansible output arrives live");
  await page.waitForFunction(() => document.querySelector("[data-test=job-output]").textContent.includes("TASK ["), null, { timeout: 120000 });
  await screenshot(page, `job-running`);

  step("the job succeeds without a reload");
  await page.waitForFunction(() => {
    const badge = document.querySelector("#job-panel .badge");
    return badge && badge.textContent.trim() === "succeeded";
  }, null, { timeout: 15 * 60 * 1000 });
  const out = await page.textContent("[data-test=job-output]");
  if (!out.includes("PLAY RECAP")) throw new Error("no PLAY RECAP in the live output");
  if (await page.locator("[data-test=cancel-job]").count() !== 0) throw new Error("Cancel still offered");
  await screenshot(page, `job-succeeded`);

  step("the audit page shows who provisioned, and the result");
  await page.click('nav a[href="/audit"]');
  // Other rows share the still test clock's timestamp (the ACME settings saved before the
  // first provisioning): the newest node_provision row is the one.
  const audit = page.locator("#audit-table tbody tr", { hasText: "node_provision" }).first();
  const text = await audit.textContent();
  if (!text.includes("node_provision") || !text.includes("succeeded")) throw new Error(`audit row: ${text}`);
  await screenshot(page, `audit`);

  step("the node page lists the provisioning in its history");
  await page.click('nav a[href="/nodes"]');
  await page.locator(`tr[data-node-id="${process.env.PRESSLUFT_NODE_ID}"] [data-test=node-link]`).click();
  await page.waitForURL(`${base}/nodes/${process.env.PRESSLUFT_NODE_ID}`);
  const nodeStatus = (await page.textContent("[data-test=node-status]")).trim();
  if (nodeStatus !== "active") throw new Error(`node page status ${nodeStatus}`);
  const history = await page.locator(`[data-test=node-jobs] tr[data-job-id="${jobId}"]`).textContent();
  if (!history.includes("succeeded")) throw new Error(`node history row: ${history}`);
  await screenshot(page, `node`);
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
}
