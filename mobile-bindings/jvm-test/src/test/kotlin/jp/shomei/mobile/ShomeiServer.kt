package jp.shomei.mobile

import com.google.gson.JsonObject
import com.google.gson.JsonParser
import java.io.File
import java.net.URI
import java.net.URLEncoder
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.util.Base64
import java.util.concurrent.TimeUnit
import javax.imageio.ImageIO
import java.awt.image.BufferedImage

/**
 * A real `shomei serve` on 127.0.0.1:0 with its own data directory (SQLite), driven through
 * `shomei admin --json`, exactly as an operator would. The binary comes from -Dshomei.bin
 * (set by scripts/jvm-test.sh).
 */
class ShomeiServer : AutoCloseable {
    private val bin: String = System.getProperty("shomei.bin")
        ?: error("-Dshomei.bin=<path to the shomei binary> is required (scripts/jvm-test.sh sets it)")
    val dataDir: File = Files.createTempDirectory("shomei-jvm-test").toFile()
    private val log = File(dataDir, "serve.log")
    private val process: Process
    val url: String

    init {
        process = ProcessBuilder(bin, "serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir.path)
            .redirectErrorStream(true)
            .redirectOutput(log)
            .start()
        url = waitForListening()
    }

    private fun waitForListening(): String {
        val pattern = Regex("listening on (http://[0-9.:]+)")
        repeat(600) {
            pattern.find(if (log.exists()) log.readText() else "")?.let { return it.groupValues[1] }
            if (!process.isAlive) error("shomei serve exited (${process.exitValue()}):\n${log.readText()}")
            Thread.sleep(100)
        }
        error("shomei serve did not report 'listening on' within 60 s:\n${log.readText()}")
    }

    fun logText(): String = if (log.exists()) log.readText() else ""

    /** `shomei admin --data-dir D --json <args>`, parsed. */
    fun admin(vararg args: String): JsonObject = adminJson(*args).asJsonObject

    /** `shomei admin --data-dir D --json <args>` for a command that lists objects. */
    fun adminList(vararg args: String): List<JsonObject> = adminJson(*args).asJsonArray.map { it.asJsonObject }

    private fun adminJson(vararg args: String): com.google.gson.JsonElement {
        val cmd = listOf(bin, "admin", "--data-dir", dataDir.path, "--json") + args
        val p = ProcessBuilder(cmd).redirectErrorStream(false).start()
        val out = p.inputStream.bufferedReader().readText()
        val err = p.errorStream.bufferedReader().readText()
        check(p.waitFor(60, TimeUnit.SECONDS)) { "shomei admin ${args.toList()} hung" }
        check(p.exitValue() == 0) { "shomei admin ${args.toList()} failed (${p.exitValue()}): $err" }
        return JsonParser.parseString(out)
    }

    override fun close() {
        process.destroy()
        if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly()
        dataDir.deleteRecursively()
    }
}

/** First present field among `names` (the admin JSON spells some ids two ways). */
fun JsonObject.str(vararg names: String): String {
    for (n in names) if (has(n) && !get(n).isJsonNull) return get(n).asString
    error("none of ${names.toList()} in $this")
}

/** The EHR terminal side: RFC 8628 device authorization + token polling, and the QR PNG. */
class Terminal(private val baseUrl: String, clientId: String, clientSecret: String) {
    private val http = HttpClient.newHttpClient()
    private val basic = "Basic " + Base64.getEncoder().encodeToString("$clientId:$clientSecret".toByteArray())

    private fun form(vararg pairs: Pair<String, String>): HttpRequest.BodyPublisher =
        HttpRequest.BodyPublishers.ofString(
            pairs.joinToString("&") { (k, v) -> "$k=" + URLEncoder.encode(v, Charsets.UTF_8) },
        )

    private fun post(path: String, body: HttpRequest.BodyPublisher): HttpResponse<String> =
        http.send(
            HttpRequest.newBuilder(URI.create(baseUrl + path))
                .header("Authorization", basic)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .POST(body)
                .build(),
            HttpResponse.BodyHandlers.ofString(),
        )

    /** Starts a login; returns the DeviceAuthorization JSON (device_code, login_id, match_number, ...). */
    fun startLogin(): JsonObject {
        val r = post("/oauth/device_authorization", form())
        check(r.statusCode() == 200) { "device_authorization: ${r.statusCode()} ${r.body()}" }
        return JsonParser.parseString(r.body()).asJsonObject
    }

    /** One token poll: (HTTP status, JSON body). */
    fun pollToken(deviceCode: String): Pair<Int, JsonObject> {
        val r = post(
            "/oauth/token",
            form("grant_type" to "urn:ietf:params:oauth:grant-type:device_code", "device_code" to deviceCode),
        )
        return r.statusCode() to JsonParser.parseString(r.body()).asJsonObject
    }

    /**
     * `POST /csc/v2/signatures/signHash` as the EHR does it: the grant's access token plus the
     * terminal's own credentials; RSA-2048 with SHA-256 (the operator's default credential).
     * `label` is the optional document label of docs/protocol.md §9.2. Returns (status, JSON body).
     */
    fun signHash(accessToken: String, credentialId: String, digests: List<ByteArray>, label: String? = null): Pair<Int, JsonObject> {
        val body = JsonObject().apply {
            addProperty("credentialID", credentialId)
            add("hashes", com.google.gson.JsonArray().apply { digests.forEach { add(Base64.getEncoder().encodeToString(it)) } })
            addProperty("hashAlgorithmOID", "2.16.840.1.101.3.4.2.1")
            addProperty("signAlgo", "1.2.840.113549.1.1.11")
            if (label != null) addProperty("label", label)
        }
        val r = http.send(
            HttpRequest.newBuilder(URI.create("$baseUrl/csc/v2/signatures/signHash"))
                .header("Authorization", "Bearer $accessToken")
                .header("Shomei-Terminal-Authorization", basic)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString()))
                .build(),
            HttpResponse.BodyHandlers.ofString(),
        )
        return r.statusCode() to JsonParser.parseString(r.body()).asJsonObject
    }

    /** The QR as the EHR screen would show it. */
    fun qrPng(loginId: String): BufferedImage {
        val r = http.send(
            HttpRequest.newBuilder(URI.create("$baseUrl/v1/terminal/logins/$loginId/qr.png"))
                .header("Authorization", basic)
                .GET()
                .build(),
            HttpResponse.BodyHandlers.ofByteArray(),
        )
        check(r.statusCode() == 200) { "qr.png: ${r.statusCode()}" }
        return ImageIO.read(r.body().inputStream()) ?: error("qr.png is not a readable PNG")
    }
}

/** A terminal registered by the operator at `facilityId`, with its one-time secret. */
fun ShomeiServer.registerTerminal(facilityId: String, name: String): Terminal {
    val t = admin("terminal", "create", "--facility", facilityId, "--name", name)
    return Terminal(url, t.str("client_id"), t.str("client_secret"))
}

/** A doctor registered by the operator at `facilityId`; their practitioner id. */
fun ShomeiServer.registerDoctor(facilityId: String, name: String): String =
    admin("practitioner", "create", "--facility", facilityId, "--name", name, "--role", "doctor").str("id", "practitioner_id")

/**
 * A phone enrolled for `practitionerId` the way the app does it: the operator's enrollment QR
 * (PNG) is read from its pixels through scan_frame, and a java.security P-256 key stands in for
 * the Keystore key.
 */
suspend fun ShomeiServer.enrollPhone(practitionerId: String): Pair<Authenticator, JvmEcKey> {
    val png = File(dataDir, "enroll-${java.util.UUID.randomUUID()}.png")
    val code = admin("enrollment", "create", "--practitioner", practitionerId, "--png", png.path)
    val frame = Frames.fromImage(ImageIO.read(png))
    val scanned = scanFrame(frame.buffer, frame.width.toUInt(), frame.height.toUInt(), frame.rowStride.toUInt())
    val payload = org.junit.jupiter.api.Assertions.assertInstanceOf(ScanResult.Shomei::class.java, scanned).payload.url
    val key = JvmEcKey()
    val auth = Authenticator(key)
    auth.enroll(payload, code.str("activation_password", "password"), "JVM test phone", Platform.ANDROID, key)
    return auth to key
}
