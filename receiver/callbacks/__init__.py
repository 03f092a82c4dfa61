"""The callback edge: routes, the shared cipher, each platform's envelope, endpoints, and the durable intake.

routes     the callback routes: verify, decrypt, hand to the intake, answer
crypto     the cipher WeCom and DingTalk share (signature, AES-CBC, PKCS#7)
wecom      WeCom's signed query and envelope;   dingtalk  DingTalk's request and encrypted reply
endpoints  per route: cipher, allowed receive-ids, inbox stream
intake     group commit of verified callbacks to the inbox, before the answer
"""
