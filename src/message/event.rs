//! Events (`MsgType=event`) of the Official Account and WeCom.
//!
//! The platforms spell event names in different cases (MP `CLICK`, WeCom `click`), so names
//! are matched without regard to ASCII case.

use std::borrow::Cow;

use serde::Serialize;

use super::take::{lowercase, optional, optional_num, required, text};
use crate::error::ProtocolError;
use crate::xml::Fields;

/// Where the pictures of a `pic_*` menu event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PicSource {
    /// `pic_sysphoto`: the system camera.
    SysPhoto,
    /// `pic_photo_or_album`: camera or album.
    PhotoOrAlbum,
    /// `pic_weixin`: the WeChat album.
    Weixin,
}

/// How a `scancode_*` menu event hands over the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanMode {
    /// `scancode_push`: the client handles the result itself.
    Push,
    /// `scancode_waitmsg`: the client waits for our reply.
    WaitMsg,
}

/// An event, typed where the platforms document it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// `subscribe`: a follow, or a first scan of a parametric QR code (`qrscene_…`).
    Subscribe {
        /// `qrscene_` + scene value for QR-code follows.
        event_key: Option<String>,
        /// QR-code ticket.
        ticket: Option<String>,
    },
    /// `unsubscribe`.
    Unsubscribe,
    /// `SCAN`: a follower scanned a parametric QR code.
    Scan {
        /// The scene value.
        event_key: String,
        /// QR-code ticket.
        ticket: Option<String>,
    },
    /// `LOCATION`: a periodic location report (can arrive every few seconds).
    Location {
        /// Latitude.
        latitude: Option<f64>,
        /// Longitude.
        longitude: Option<f64>,
        /// Accuracy.
        precision: Option<f64>,
    },
    /// `CLICK`: a menu button with a key.
    Click {
        /// The button's key.
        event_key: String,
    },
    /// `VIEW`: a menu link.
    View {
        /// The URL.
        event_key: String,
        /// MP: the menu id.
        menu_id: Option<String>,
    },
    /// `scancode_push` / `scancode_waitmsg`.
    ScanCode {
        /// Which of the two.
        mode: ScanMode,
        /// The button's key.
        event_key: String,
        /// `qrcode`, `barcode`, …
        scan_type: String,
        /// The decoded content.
        scan_result: String,
    },
    /// `pic_sysphoto` / `pic_photo_or_album` / `pic_weixin`.
    Pics {
        /// Which of the three.
        source: PicSource,
        /// The button's key.
        event_key: String,
        /// Number of pictures.
        count: Option<u32>,
        /// MD5 of each picture.
        pic_md5_sums: Vec<String>,
    },
    /// `location_select`.
    LocationSelect {
        /// The button's key.
        event_key: String,
        /// Latitude.
        location_x: Option<f64>,
        /// Longitude.
        location_y: Option<f64>,
        /// Zoom.
        scale: Option<f64>,
        /// Address text.
        label: String,
        /// POI name, if one was picked.
        poiname: Option<String>,
    },
    /// `TEMPLATESENDJOBFINISH`.
    TemplateSendJobFinish {
        /// The template message id (`MsgID`).
        msg_id: Option<u64>,
        /// `success`, `failed:user block`, …
        status: String,
    },
    /// `MASSSENDJOBFINISH`.
    MassSendJobFinish {
        /// The mass message id (`MsgID`).
        msg_id: Option<u64>,
        /// Result status.
        status: String,
        /// Followers targeted.
        total_count: Option<u64>,
        /// Followers after filtering.
        filter_count: Option<u64>,
        /// Sent.
        sent_count: Option<u64>,
        /// Failed.
        error_count: Option<u64>,
    },
    /// WeCom `enter_agent`: a member opened the app.
    EnterAgent {
        /// Usually empty.
        event_key: String,
    },
    /// WeCom `batch_job_result`.
    BatchJobResult {
        /// Job id.
        job_id: String,
        /// `sync_user`, `replace_user`, …
        job_type: String,
        /// 0 on success.
        err_code: Option<i64>,
        /// Error text.
        err_msg: String,
    },
    /// WeCom `change_contact`; its many per-ChangeType fields stay in the message's extras.
    ChangeContact {
        /// `create_user`, `update_party`, …
        change_type: String,
    },
    /// WeCom `template_card_event`: a button of a template card was pressed.
    TemplateCardEvent {
        /// The button's key.
        event_key: String,
        /// The card's task id.
        task_id: String,
        /// Card type.
        card_type: String,
        /// Code for `update_template_card` replies.
        response_code: String,
    },
    /// Any other event; its fields stay in the message's extras.
    Unknown {
        /// The event name as sent.
        name: String,
        /// EventKey, if any.
        event_key: Option<String>,
    },
}

impl Event {
    /// Reads the event fields, consuming them.
    pub(crate) fn from_fields(f: &mut Fields<'_>) -> Result<Self, ProtocolError> {
        let name = required(f, "Event")?;
        let event = match lowercase(&name, &mut [0; super::take::MAX_KNOWN_NAME]) {
            "subscribe" => Self::Subscribe {
                event_key: optional(f, "EventKey"),
                ticket: optional(f, "Ticket"),
            },
            "unsubscribe" => Self::Unsubscribe,
            "scan" => Self::Scan {
                event_key: text(f, "EventKey"),
                ticket: optional(f, "Ticket"),
            },
            "location" => Self::Location {
                latitude: optional_num(f, "Latitude")?,
                longitude: optional_num(f, "Longitude")?,
                precision: optional_num(f, "Precision")?,
            },
            "click" => Self::Click {
                event_key: text(f, "EventKey"),
            },
            "view" => Self::View {
                event_key: text(f, "EventKey"),
                menu_id: optional(f, "MenuId"),
            },
            "scancode_push" => Self::scan_code(f, ScanMode::Push),
            "scancode_waitmsg" => Self::scan_code(f, ScanMode::WaitMsg),
            "pic_sysphoto" => Self::pics(f, PicSource::SysPhoto)?,
            "pic_photo_or_album" => Self::pics(f, PicSource::PhotoOrAlbum)?,
            "pic_weixin" => Self::pics(f, PicSource::Weixin)?,
            "location_select" => Self::LocationSelect {
                event_key: text(f, "EventKey"),
                location_x: optional_num(f, "SendLocationInfo.Location_X")?,
                location_y: optional_num(f, "SendLocationInfo.Location_Y")?,
                scale: optional_num(f, "SendLocationInfo.Scale")?,
                label: text(f, "SendLocationInfo.Label"),
                poiname: optional(f, "SendLocationInfo.Poiname"),
            },
            "templatesendjobfinish" => Self::TemplateSendJobFinish {
                msg_id: optional_num(f, "MsgID")?,
                status: text(f, "Status"),
            },
            "masssendjobfinish" => Self::MassSendJobFinish {
                msg_id: optional_num(f, "MsgID")?,
                status: text(f, "Status"),
                total_count: optional_num(f, "TotalCount")?,
                filter_count: optional_num(f, "FilterCount")?,
                sent_count: optional_num(f, "SentCount")?,
                error_count: optional_num(f, "ErrorCount")?,
            },
            "enter_agent" => Self::EnterAgent {
                event_key: text(f, "EventKey"),
            },
            "batch_job_result" => Self::BatchJobResult {
                job_id: text(f, "BatchJob.JobId"),
                job_type: text(f, "BatchJob.JobType"),
                err_code: optional_num(f, "BatchJob.ErrCode")?,
                err_msg: text(f, "BatchJob.ErrMsg"),
            },
            "change_contact" => Self::ChangeContact {
                change_type: text(f, "ChangeType"),
            },
            "template_card_event" => Self::TemplateCardEvent {
                event_key: text(f, "EventKey"),
                task_id: text(f, "TaskId"),
                card_type: text(f, "CardType"),
                response_code: text(f, "ResponseCode"),
            },
            _ => Self::Unknown {
                name,
                event_key: optional(f, "EventKey"),
            },
        };
        Ok(event)
    }

    fn scan_code(f: &mut Fields<'_>, mode: ScanMode) -> Self {
        Self::ScanCode {
            mode,
            event_key: text(f, "EventKey"),
            scan_type: text(f, "ScanCodeInfo.ScanType"),
            scan_result: text(f, "ScanCodeInfo.ScanResult"),
        }
    }

    fn pics(f: &mut Fields<'_>, source: PicSource) -> Result<Self, ProtocolError> {
        Ok(Self::Pics {
            source,
            event_key: text(f, "EventKey"),
            count: optional_num(f, "SendPicsInfo.Count")?,
            pic_md5_sums: f.take_all("SendPicsInfo.PicList.item.PicMd5Sum"),
        })
    }

    /// The event name, lowercase; for unknown events the name as sent, lowercased.
    pub fn name(&self) -> std::borrow::Cow<'_, str> {
        use Cow::Borrowed;
        match self {
            Self::Subscribe { .. } => Borrowed("subscribe"),
            Self::Unsubscribe => Borrowed("unsubscribe"),
            Self::Scan { .. } => Borrowed("scan"),
            Self::Location { .. } => Borrowed("location"),
            Self::Click { .. } => Borrowed("click"),
            Self::View { .. } => Borrowed("view"),
            Self::ScanCode {
                mode: ScanMode::Push,
                ..
            } => Borrowed("scancode_push"),
            Self::ScanCode {
                mode: ScanMode::WaitMsg,
                ..
            } => Borrowed("scancode_waitmsg"),
            Self::Pics {
                source: PicSource::SysPhoto,
                ..
            } => Borrowed("pic_sysphoto"),
            Self::Pics {
                source: PicSource::PhotoOrAlbum,
                ..
            } => Borrowed("pic_photo_or_album"),
            Self::Pics {
                source: PicSource::Weixin,
                ..
            } => Borrowed("pic_weixin"),
            Self::LocationSelect { .. } => Borrowed("location_select"),
            Self::TemplateSendJobFinish { .. } => Borrowed("templatesendjobfinish"),
            Self::MassSendJobFinish { .. } => Borrowed("masssendjobfinish"),
            Self::EnterAgent { .. } => Borrowed("enter_agent"),
            Self::BatchJobResult { .. } => Borrowed("batch_job_result"),
            Self::ChangeContact { .. } => Borrowed("change_contact"),
            Self::TemplateCardEvent { .. } => Borrowed("template_card_event"),
            Self::Unknown { name, .. } => Cow::Owned(name.to_ascii_lowercase()),
        }
    }

    /// The EventKey, where the event has one.
    pub fn event_key(&self) -> Option<&str> {
        match self {
            Self::Subscribe { event_key, .. } | Self::Unknown { event_key, .. } => {
                event_key.as_deref()
            }
            Self::Scan { event_key, .. }
            | Self::Click { event_key }
            | Self::View { event_key, .. }
            | Self::ScanCode { event_key, .. }
            | Self::Pics { event_key, .. }
            | Self::LocationSelect { event_key, .. }
            | Self::EnterAgent { event_key }
            | Self::TemplateCardEvent { event_key, .. } => Some(event_key),
            Self::Unsubscribe
            | Self::Location { .. }
            | Self::TemplateSendJobFinish { .. }
            | Self::MassSendJobFinish { .. }
            | Self::BatchJobResult { .. }
            | Self::ChangeContact { .. } => None,
        }
    }

    /// Events that only report something and expect no reply; they can be answered empty
    /// without running a bot (LOCATION can arrive every few seconds per user).
    pub fn is_report_only(&self) -> bool {
        matches!(
            self,
            Self::Location { .. }
                | Self::Unsubscribe
                | Self::View { .. }
                | Self::TemplateSendJobFinish { .. }
                | Self::MassSendJobFinish { .. }
                | Self::BatchJobResult { .. }
                | Self::ChangeContact { .. }
                | Self::ScanCode {
                    mode: ScanMode::Push,
                    ..
                }
        )
    }
}
