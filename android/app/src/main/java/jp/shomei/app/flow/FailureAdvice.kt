package jp.shomei.app.flow

import jp.shomei.mobile.AuthenticatorException

/**
 * What the user reads, and what the app offers, for each typed failure from Rust.
 *
 * - A server that no longer knows this phone (`device_unknown`), has revoked it
 *   (`device_revoked`) or cannot verify its signatures (`signature_invalid`: the key the
 *   server holds is not this phone's) will refuse every approval: offer re-enrollment.
 * - An invalidated key (new fingerprint/face) is dead for good: forget the enrollment now.
 * - A key failure's reason may carry an exception's whole stack trace (uniffi reports an
 *   undeclared exception that way): it is never shown, only a fixed sentence.
 * - Reasons that are shown are cut to their first line and 160 characters.
 */
data class FailureAdvice(val message: String, val action: Action) {
    enum class Action {
        /** Nothing to offer beyond going back. */
        NONE,

        /** The code on the EHR screen must be refreshed and scanned (or typed) again. */
        REFRESH_CODE,

        /** The typed login code was wrong or used up: let the user type the code again. */
        RETYPE_CODE,

        /** Transient: the same action may work in a moment. */
        RETRY,

        /** The server will not accept this phone any more: offer to forget it and re-enroll. */
        OFFER_RE_ENROLLMENT,

        /** The key is gone for good: forget the enrollment now and ask for re-enrollment. */
        FORGET_AND_RE_ENROLL,
    }

    companion object {
        /** Problem codes (docs/api.md) after which this phone cannot approve anything again. */
        val RE_ENROLL_CODES = setOf("device_revoked", "device_unknown", "signature_invalid")

        fun of(e: AuthenticatorException): FailureAdvice = when (e) {
            is AuthenticatorException.UserCancelled -> FailureAdvice("生体認証がキャンセルされました。", Action.NONE)
            is AuthenticatorException.BiometricLockout -> FailureAdvice(
                "生体認証がロックされています。端末のロックを解除してから再度お試しください。", Action.RETRY,
            )
            is AuthenticatorException.KeyInvalidated -> FailureAdvice(
                "生体情報が変更されたため、この端末の鍵は無効になりました。再登録してください。",
                Action.FORGET_AND_RE_ENROLL,
            )
            is AuthenticatorException.KeyNotAvailable -> FailureAdvice(
                "端末の鍵を使用できません: ${shortReason(e.reason)}", Action.NONE,
            )
            is AuthenticatorException.KeyFailed -> FailureAdvice(
                "端末の鍵でエラーが発生しました。もう一度お試しください。", Action.RETRY,
            )
            is AuthenticatorException.InvalidPayload -> FailureAdvice(
                "このQRコードは正しくありません: ${shortReason(e.reason)}", Action.REFRESH_CODE,
            )
            is AuthenticatorException.InvalidUserCode -> FailureAdvice(
                "コードが正しくありません: ${shortReason(e.reason)}", Action.RETYPE_CODE,
            )
            is AuthenticatorException.PayloadExpired -> FailureAdvice(
                "QRコードの有効期限が切れています。画面のQRコードを更新してください。", Action.REFRESH_CODE,
            )
            is AuthenticatorException.WrongPayloadKind -> FailureAdvice(
                "このQRコードはここでは使えません。", Action.NONE,
            )
            is AuthenticatorException.NotEnrolled -> FailureAdvice("この端末はまだ登録されていません。", Action.NONE)
            is AuthenticatorException.AlreadyEnrolled -> FailureAdvice(
                "この端末は既に登録されています。別のサーバーに登録し直すには、先にホーム画面で登録を削除してください。",
                Action.NONE,
            )
            is AuthenticatorException.WrongServer -> FailureAdvice(
                "このQRコードは登録先と異なるサーバーのものです。読み取りを中止しました。", Action.NONE,
            )
            is AuthenticatorException.Network -> FailureAdvice("通信できませんでした。", Action.RETRY)
            is AuthenticatorException.Timeout -> FailureAdvice("サーバーが応答しませんでした。", Action.RETRY)
            is AuthenticatorException.Rejected -> rejected(e)
            is AuthenticatorException.InvalidInput -> FailureAdvice(
                "入力が正しくありません: ${shortReason(e.reason)}", Action.NONE,
            )
            is AuthenticatorException.Protocol -> FailureAdvice("サーバーの応答が不正です。", Action.RETRY)
            is AuthenticatorException.InvalidState -> FailureAdvice(
                "保存された登録情報が壊れています。再登録してください。", Action.FORGET_AND_RE_ENROLL,
            )
            else -> FailureAdvice("エラーが発生しました（${e.javaClass.simpleName}）。", Action.NONE)
        }

        private fun rejected(e: AuthenticatorException.Rejected): FailureAdvice = when (e.code) {
            in RE_ENROLL_CODES -> FailureAdvice(
                "サーバーはこの端末を受け付けません（${e.code}）。登録を削除して、管理者から新しい登録用QRコードを受け取ってください。",
                Action.OFFER_RE_ENROLLMENT,
            )
            "activation_password_wrong" -> FailureAdvice(
                "アクティベーションパスワードが正しくありません。", Action.RETRY,
            )
            "enrollment_expired", "enrollment_used", "enrollment_locked" -> FailureAdvice(
                "この登録用QRコードはもう使えません（${e.code}）。管理者に新しいコードを依頼してください。",
                Action.NONE,
            )
            "number_mismatch" -> FailureAdvice(
                "選んだ番号がEHR画面の番号と一致しません。ログインは中止されました。", Action.REFRESH_CODE,
            )
            "login_expired" -> FailureAdvice(
                "ログイン要求の有効期限が切れています。EHR画面でやり直してください。", Action.REFRESH_CODE,
            )
            // The typed-code fallback (docs/protocol.md §4.6).
            "login_unknown" -> FailureAdvice(
                "このログイン要求は見つかりません。EHR画面のQRコード（またはその横のコード）を確認して、やり直してください。",
                Action.REFRESH_CODE,
            )
            "login_already_decided" -> FailureAdvice(
                "このログイン要求には既に回答済みです。", Action.NONE,
            )
            "practitioner_not_allowed" -> FailureAdvice(
                "この医療機関には登録されていないため、承認できません。", Action.NONE,
            )
            "user_code_invalid" -> FailureAdvice(
                "コードが正しくありません: ${shortReason(e.detail)}", Action.RETYPE_CODE,
            )
            "rate_limited" -> FailureAdvice(
                "誤ったコードの入力が続いたため、しばらく入力できません。しばらく待ってからやり直すか、QRコードを読み取ってください。",
                Action.NONE,
            )
            "attestation_invalid" -> FailureAdvice(
                "この端末はサーバーの登録条件を満たしていません: ${shortReason(e.detail)}", Action.NONE,
            )
            else -> FailureAdvice("サーバーが拒否しました (${e.code}): ${shortReason(e.detail)}", Action.NONE)
        }

        /** First line, at most 160 characters: never a stack trace on screen. */
        fun shortReason(reason: String): String {
            val line = reason.lineSequence().firstOrNull { it.isNotBlank() }?.trim() ?: ""
            return if (line.length <= 160) line else line.take(159) + "…"
        }
    }
}
