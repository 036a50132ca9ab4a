// Starts dynalite as its own cli.js does (node dynalite_server.js CLI_JS [dynalite args]),
// but keeps it alive when a client aborts a request half way: dynalite 4.0.0 re-throws
// the request's 'error' event (index.js, httpHandler), which ends the whole process. A
// real DynamoDB endpoint shrugs off such a client (a SIGKILLed hub, a reset connection),
// so the test peer must too. Any other uncaught error still ends the process.
'use strict'

process.on('uncaughtException', function (err) {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error('dynalite_server: a client aborted a request (%s); serving on', err.message)
    return
  }
  console.error(err)
  process.exit(1)
})

const cli = process.argv[2]
if (!cli) {
  console.error('usage: node dynalite_server.js CLI_JS [dynalite options]')
  process.exit(2)
}
// cli.js reads its options from process.argv[2...].
process.argv.splice(2, 1)
require(cli)
