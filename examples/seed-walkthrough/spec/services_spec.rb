# The application's linked services answer by name, as on Codeship: redis to PING, postgres
# to a TCP connect (both may still be starting when the step does: wait a bounded time).
require "socket"

def answer(host, port, send = nil, deadline: Time.now + 60)
  begin
    socket = TCPSocket.new(host, port)
    return true unless send

    socket.write(send)
    socket.gets
  rescue SystemCallError, SocketError
    raise if Time.now > deadline

    sleep 1
    retry
  ensure
    socket&.close
  end
end

RSpec.describe "the linked services" do
  it "redis answers PING" do
    expect(answer("redis", 6379, "PING\r\n")).to eq("+PONG\r\n")
  end

  it "postgres accepts connections" do
    expect(answer("postgres", 5432)).to be true
  end
end
