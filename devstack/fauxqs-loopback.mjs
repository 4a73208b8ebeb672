// Starts fauxqs bound to 127.0.0.1 only. fauxqs always listens on 0.0.0.0;
// a dev emulator with no auth has no business on other interfaces, so the
// listen call is narrowed to loopback before fauxqs starts.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[0] && typeof args[0] === "object" && args[0].host === "0.0.0.0") {
    args[0] = { ...args[0], host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};

const { startFauxqs } = await import("fauxqs");
await startFauxqs({ logger: process.env.FAUXQS_LOGGER === "true" });
