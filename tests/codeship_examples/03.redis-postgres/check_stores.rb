# Reaches both linked stores, waiting for each to accept connections.
require "pg"
require "redis"

def patiently(errors, attempts = 20)
  yield
rescue *errors
  attempts -= 1
  raise if attempts.zero?
  sleep 1
  retry
end

cache = patiently([Redis::CannotConnectError]) { Redis.new(host: "redis").tap(&:ping) }
puts "redis #{cache.info["redis_version"]}"

sql = patiently([PG::ConnectionBad]) { PG.connect(host: "db", user: "postgres") }
puts sql.exec("SHOW server_version").getvalue(0, 0).then { |v| "postgres #{v}" }
