package jp.shomei.app.ui

import android.app.Activity
import android.content.Intent
import android.os.Bundle
import android.text.InputType
import android.view.inputmethod.EditorInfo
import android.widget.EditText
import android.widget.TextView
import jp.shomei.app.flow.CodeEntry
import jp.shomei.mobile.normalizeUserCode

/**
 * "Type the code" beside the scanner (docs/protocol.md §4.6): when the camera cannot read the
 * EHR's QR, the practitioner types the 8-letter code shown next to it. A typo is refused here
 * by core's `normalizeUserCode` (which character, at which position) before anything is sent;
 * a well-formed code opens the same approval screen as a scan, which resolves it on the server
 * and shows the facility, terminal and the three numbers.
 */
class CodeEntryActivity : Activity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        lateinit var field: EditText
        lateinit var problem: TextView
        fun submit() {
            when (val entry = CodeEntry.of(field.text.toString(), ::normalizeUserCode)) {
                is CodeEntry.Send -> {
                    startActivity(Intent(this, ApproveActivity::class.java).putExtra(MainActivity.EXTRA_USER_CODE, entry.canonical))
                    finish()
                }
                is CodeEntry.Fix -> problem.text = entry.message
            }
        }
        showScreen(column {
            text("コードを入力", 22f, bold = true)
            text(CodeEntry.PROMPT)
            text(CodeEntry.WARNING, bold = true)
            field = EditText(context).apply {
                // Letters only, upper case offered; no suggestions or autocorrect of the code.
                inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_CAP_CHARACTERS or
                    InputType.TYPE_TEXT_FLAG_NO_SUGGESTIONS or InputType.TYPE_TEXT_VARIATION_VISIBLE_PASSWORD
                hint = "BCDF-GHJK"
                textSize = 24f
                imeOptions = EditorInfo.IME_ACTION_GO
                setOnEditorActionListener { _, action, _ ->
                    if (action == EditorInfo.IME_ACTION_GO) {
                        submit()
                        true
                    } else {
                        false
                    }
                }
            }.also { addView(it) }
            problem = text("")
            button("次へ") { submit() }
            button("QRコードを読み取る") {
                startActivity(Intent(this@CodeEntryActivity, ScanActivity::class.java))
                finish()
            }
        })
    }
}
