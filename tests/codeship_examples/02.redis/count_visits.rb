# Counts two visits in the linked redis and fails unless the counter reads 2.
require "redis"

def connect(attempts: 15)
  client = Redis.new(host: "redis")
  client.ping
  client
rescue Redis::CannotConnectError
  attempts -= 1
  raise if attempts.zero?
  sleep 1
  retry
end

store = connect
store.del("visits")
2.times { store.incr("visits") }
seen = store.get("visits").to_i
puts "visits counted: #{seen}"
exit(seen == 2 ? 0 : 1)
