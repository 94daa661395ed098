package jp.shomei.app.flow

import java.util.concurrent.atomic.AtomicBoolean

/**
 * Lets one approve/deny (or any other one-shot action) run at a time: a double tap, or a tap
 * on "deny" while "approve" waits for the biometric prompt, is dropped instead of racing the
 * first. The screen also disables its buttons while [isBusy]; this gate is what makes the rule
 * hold even for taps that arrive before the buttons are redrawn.
 */
class SingleFlight {
    private val running = AtomicBoolean(false)

    val isBusy: Boolean get() = running.get()

    /** Runs [block] unless another run is in progress; returns null when it was dropped. */
    suspend fun <T> runIfIdle(block: suspend () -> T): T? {
        if (!running.compareAndSet(false, true)) return null
        try {
            return block()
        } finally {
            running.set(false)
        }
    }
}
