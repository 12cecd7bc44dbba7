/**
 * Socket options of every AMQP connection pulse-bridge opens (the bridge's
 * feeds, the readiness probe, the demo's publisher).
 *
 * amqplib leaves Nagle's algorithm on: a small frame (an ack, a handshake
 * step) then waits for the peer's delayed TCP ack. Against the local broker
 * that cost 46-50 ms per connect (2-7 ms with TCP_NODELAY), and it can hold an
 * ack back while the broker waits for it to deliver more.
 */
export const AMQP_SOCKET_OPTIONS = { noDelay: true } as const;
