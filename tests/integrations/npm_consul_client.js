// Drives waypost with the npm `consul` package, as a Node.js service would.
// Prints one JSON object with what it saw; the pytest side asserts on it.
"use strict";
const Consul = require("consul");

async function main() {
  const consul = new Consul({ host: process.env.AGENT_HOST, port: process.env.AGENT_PORT });
  const seen = {};
  await consul.agent.service.register({
    name: "api", id: "api-1", port: 9000, tags: ["v1"], check: { ttl: "30s" },
  });
  await consul.agent.check.pass("service:api-1");
  seen.passing = (await consul.health.service({ service: "api", passing: true }))
    .map((e) => e.Service.ID);
  seen.catalog = (await consul.catalog.service.nodes("api")).map((n) => n.ServicePort);
  await consul.kv.set("cfg/a", "1");
  seen.kv = (await consul.kv.get("cfg/a")).Value;
  seen.members = (await consul.agent.members()).length;
  seen.leader = await consul.status.leader();

  // A watch is a loop of blocking queries: it must see the second instance.
  const watch = consul.watch({
    method: consul.health.service,
    options: { service: "api", passing: true },
    backoffFactor: 100,
  });
  seen.watched = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("watch saw no change")), 20000);
    let first = true;
    watch.on("change", (data) => {
      if (first) {
        first = false;
        consul.agent.service.register({
          name: "api", id: "api-2", port: 9001, check: { ttl: "30s", status: "passing" },
        });
        return;
      }
      clearTimeout(timer);
      resolve(data.map((e) => e.Service.ID).sort());
    });
    watch.on("error", reject);
  });
  watch.end();
  await consul.agent.service.deregister("api-1");
  seen.after = (await consul.agent.services());
  seen.after = Object.keys(seen.after).sort();
  console.log(JSON.stringify(seen));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
