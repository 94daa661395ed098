package jp.shomei.app.flow

import jp.shomei.mobile.AuthenticatorException

/**
 * The typed-code fallback's entry field (docs/protocol.md §4.6): when the camera cannot read
 * the EHR's QR, the practitioner types the 8-letter code shown beside it. Core's
 * `normalizeUserCode` is the only judge of what a code is (case, spaces, hyphens and their
 * full-width forms do not matter; vowels, `Y` and digits are never in a code); this class only
 * turns its answer into what the screen does: send the canonical code, or say what to fix
 * without sending anything.
 */
sealed interface CodeEntry {
    /** Resolve this canonical code (`BCDF-GHJK`) on the server. */
    data class Send(val canonical: String) : CodeEntry

    /** Do not send; show [message] and let the user correct the field. */
    data class Fix(val message: String) : CodeEntry

    companion object {
        /** What the entry screen says above the field, before anything is typed. */
        const val PROMPT = "EHR画面のQRコードの横に表示されている8文字のコード（例: BCDF-GHJK）を入力してください。"

        /**
         * Relay phishing (§8): a code can be read out over the telephone, a QR hardly. Only a
         * code on the screen in front of the practitioner may be typed.
         */
        const val WARNING = "目の前のEHR画面に表示されたコードだけを入力してください。電話やメッセージで伝えられたコードは絶対に入力しないでください。"

        /** [normalize] is the bindings' `normalizeUserCode`; injected for tests. */
        fun of(typed: String, normalize: (String) -> String): CodeEntry = try {
            Send(normalize(typed))
        } catch (e: AuthenticatorException.InvalidUserCode) {
            Fix("コードが正しくありません: ${FailureAdvice.shortReason(e.reason)}")
        }
    }
}
