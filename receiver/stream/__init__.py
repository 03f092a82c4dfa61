"""DingTalk Stream mode: contact events over an outbound WebSocket, for corps with no public callback URL.

frames    the frames the gateway sends and the ACKs we answer (pure)
consumer  one corp's connection: connections/open, the socket, pings, reconnects; events → the intake → ACK
"""
