// Platformatic DB 3.x started programmatically, the benchmark's Node peer.
// Copied next to its node_modules by swain.contrib.bench.platformatic and run
// with Node 22.  Environment: DATABASE_URL, PORT, WORKERS (processes sharing
// the port through node:cluster, as watt's workers do).
import cluster from 'node:cluster'

const workers = Number(process.env.WORKERS || 1)
if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork()
  cluster.on('exit', () => process.exit(1))
} else {
  const { create } = await import('@platformatic/db')
  const server = { hostname: '127.0.0.1', port: Number(process.env.PORT), logger: { level: 'warn' } }
  const app = await create(process.cwd(), {
    server,
    db: { connectionString: process.env.DATABASE_URL, graphql: false, openapi: true }
  }, { isEntrypoint: true })
  // @platformatic/service binds 0.0.0.0 when it thinks it runs in a container
  app.config.server.hostname = '127.0.0.1'
  app.serverConfig.hostname = '127.0.0.1'
  await app.start()
}
